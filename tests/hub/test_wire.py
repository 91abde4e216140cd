"""The frame format: round-trips exactly, and rejects other versions and garbage clearly."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qkt.hub import wire
from qkt.hub.errors import WireError
from qkt.hub.wire import SequencedCandle, SnapshotReply, SnapshotRequest, SyncMarker
from qkt.market.models import Candle, CandleKey
from tests.hub.feeds import candle, key

K1M = key("BYBIT:BTCUSDT:1m")

prices = st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=0, max_value=10**9)


def test_topic_is_the_documented_shape_with_a_terminator() -> None:
    assert wire.topic(K1M) == b"candle.BYBIT.BTCUSDT.1m\x00"
    assert wire.topic(key("SIM:BRK.B:4h")) == b"candle.SIM.BRK.B.4h\x00"


@pytest.mark.parametrize("other", ["BYBIT:BTCUSDT:15m", "BYBIT:BTCUSDT:1h", "BYBIT:BTCUSDTX:1m"])
def test_no_topic_is_a_prefix_of_another(other: str) -> None:
    a, b = wire.topic(K1M), wire.topic(key(other))
    assert not b.startswith(a) and not a.startswith(b)
    # A 1mo-like topic (a unit qkt may learn later) can never match a 1m subscription either.
    assert not (wire.TOPIC_PREFIX + b"BYBIT.BTCUSDT.1mo" + wire.TERMINATOR).startswith(a)


def test_a_broker_with_a_dot_cannot_be_a_topic() -> None:
    with pytest.raises(WireError, match="no '.' in the broker"):
        wire.topic(key("BY.BIT:BTCUSDT:1m"))


@given(
    o=prices,
    h=prices,
    low=prices,
    c=prices,
    v=prices,
    seq=st.integers(1, 2**40),
    open_ms=st.integers(0, 2**45),
    epoch=st.integers(0, 2**63 - 1),
)
def test_candle_round_trips_exactly(
    o: Decimal,
    h: Decimal,
    low: Decimal,
    c: Decimal,
    v: Decimal,
    seq: int,
    open_ms: int,
    epoch: int,
) -> None:
    item = SequencedCandle(Candle(K1M, open_ms, o, h, low, c, v), seq, epoch)
    back = wire.decode_message(wire.encode_candle(item))
    assert back == item
    assert isinstance(back, SequencedCandle)
    # Exact: the same digits and exponent, not only equal values (1.50 stays 1.50).
    sent = (o, h, low, c, v)
    got = (
        back.candle.open,
        back.candle.high,
        back.candle.low,
        back.candle.close,
        back.candle.volume,
    )
    assert [x.as_tuple() for x in got] == [x.as_tuple() for x in sent]


def test_payload_carries_version_seq_key_and_decimal_strings() -> None:
    frames = wire.encode_candle(SequencedCandle(candle(K1M, 0), 7, 42))
    assert orjson.loads(frames[1]) == {
        "v": 1,
        "type": "candle",
        "key": "BYBIT:BTCUSDT:1m",
        "epoch": 42,
        "seq": 7,
        "open_ms": 1_767_225_600_000,
        "open": "100.10",
        "high": "100.60",
        "low": "99.85",
        "close": "100.225",
        "volume": "1.000",
    }


# Any text a key can carry: no ':' (it splits the key), no NUL (the topic's terminator), and no
# lone surrogates (not UTF-8: no feed or file can hand one over, and orjson refuses them).
KEY_TEXT = st.characters(blacklist_categories=("Cs",), blacklist_characters=":\x00")


@given(symbol=st.text(KEY_TEXT, min_size=1, max_size=12))
def test_a_key_with_quotes_backslashes_or_any_text_round_trips(symbol: str) -> None:
    # The payload's key part is made once per key from a template: its text must be escaped.
    k = CandleKey("SIM", symbol, K1M.timeframe)
    item = SequencedCandle(candle(k, 3), 4, 5)
    frames = wire.encode_candle(item)
    assert orjson.loads(frames[1])["key"] == f"SIM:{symbol}:1m"
    assert wire.decode_message(frames) == item


def test_the_fast_builders_make_the_same_records() -> None:
    built = wire.sequenced(candle(K1M, 2), 9, 4)
    assert built == SequencedCandle(candle(K1M, 2), 9, 4) and built.snapshot is False
    assert repr(built) == repr(SequencedCandle(candle(K1M, 2), 9, 4))
    assert [f.name for f in dataclasses.fields(SequencedCandle)] == list(SequencedCandle.__slots__)


def test_sync_marker_round_trips() -> None:
    topic = wire.topic(K1M)
    assert wire.decode_message(wire.encode_sync(topic)) == SyncMarker(topic)


def test_snapshot_request_and_reply_round_trip() -> None:
    request = SnapshotRequest(request_id=9, key=K1M, after_seq=3, limit=20)
    assert wire.decode_request(wire.encode_request(request)) == request
    unlimited = SnapshotRequest(request_id=10, key=K1M)
    assert wire.decode_request(wire.encode_request(unlimited)) == unlimited
    rows = tuple(SequencedCandle(candle(K1M, i), i + 1, 5) for i in range(3))
    reply = SnapshotReply(request_id=9, key=K1M, epoch=5, seq=3, candles=rows)
    assert wire.decode_reply(wire.encode_reply(reply)) == reply
    error = SnapshotReply(9, K1M, 0, 0, error="unknown_key", message="nobody acquired it")
    assert wire.decode_reply(wire.encode_reply(error)) == error
    broken = SnapshotReply(3, None, 0, 0, error="bad_request", message="no key")
    assert wire.decode_reply(wire.encode_reply(broken)) == broken


def _payload(**changes: object) -> bytes:
    obj = orjson.loads(wire.encode_candle(SequencedCandle(candle(K1M, 0), 1, 1))[1])
    obj.update(changes)
    return orjson.dumps({k: v for k, v in obj.items() if v is not None})


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([wire.topic(K1M), _payload(v=2)], "unsupported wire version 2 (this qkt speaks 1)"),
        ([wire.topic(K1M), _payload(v="1")], "unsupported wire version '1'"),
        ([wire.topic(K1M), b"\x00\xffgarbage"], "payload is not JSON"),
        ([wire.topic(K1M), b"[1, 2]"], "payload must be a JSON object, got list"),
        ([wire.topic(K1M)], "expected 2 frames [topic, payload], got 1"),
        ([b"weather.x", _payload()], "not a candle topic"),
        ([wire.topic(key("BYBIT:BTCUSDT:15m")), _payload()], "does not match the payload's key"),
        ([wire.topic(K1M), _payload(close=100.5)], "field 'close' must be str, got 100.5"),
        ([wire.topic(K1M), _payload(close="NaN")], "field 'close': not a finite decimal"),
        ([wire.topic(K1M), _payload(close="1,5")], "field 'close': not a decimal number"),
        ([wire.topic(K1M), _payload(seq=0)], "field 'seq' must be >= 1, got 0"),
        ([wire.topic(K1M), _payload(seq=True)], "field 'seq' must be int, got True"),
        ([wire.topic(K1M), _payload(key="BYBIT:BTCUSDT")], "bad candle key"),
        ([wire.topic(K1M), _payload(type="trade")], "unknown message type 'trade'"),
        ([wire.topic(K1M), _payload(open_ms=None)], "field 'open_ms' must be int, got None"),
    ],
)
def test_decode_rejects_bad_frames_with_one_error_type(frames: list[bytes], message: str) -> None:
    with pytest.raises(WireError) as caught:
        wire.decode_message(frames)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "payload is not JSON"),
        (orjson.dumps({"v": 2, "type": "snapshot"}), "unsupported wire version 2"),
        (
            orjson.dumps({"v": 1, "type": "snapshot", "id": 1, "key": "A:B:1m", "after_seq": -1}),
            "'after_seq' must be >= 0",
        ),
        (
            orjson.dumps(
                {"v": 1, "type": "snapshot", "id": 1, "key": "A:B:1m", "after_seq": 0, "limit": -5}
            ),
            "'limit' must be null or an integer >= 0",
        ),
        (orjson.dumps({"v": 1, "type": "hello"}), "expected a snapshot request"),
    ],
)
def test_decode_request_rejects_bad_frames(frame: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        wire.decode_request(frame)


def test_decode_reply_rejects_bad_rows_and_codes() -> None:
    good = orjson.loads(wire.encode_reply(SnapshotReply(1, K1M, 1, 1)))
    with pytest.raises(WireError, match="a snapshot row must be"):
        wire.decode_reply(orjson.dumps({**good, "candles": [[1, 2, "3"]]}))
    with pytest.raises(WireError, match="unknown snapshot error code 'oops'"):
        wire.decode_reply(orjson.dumps({**good, "error": "oops"}))
    with pytest.raises(WireError, match="must name its key"):
        row = [1, 0, "1", "1", "1", "1", "1"]
        wire.decode_reply(orjson.dumps({**good, "key": None, "candles": [row]}))


def test_request_id_of_is_best_effort() -> None:
    assert wire.request_id_of(b'{"id": 4, "v": 9}') == 4
    assert wire.request_id_of(b"garbage") is None
    assert wire.request_id_of(b"[1]") is None
