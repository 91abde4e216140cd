"""The hub's fixed frame format: topics, candle and sync frames, snapshot requests and replies.

PUB frames are multipart `[topic, payload]`. The topic is `candle.<BROKER>.<SYMBOL>.<tf>` and a
terminator byte, so that ZeroMQ's prefix matching of a subscription to `...1m` cannot also match
`...15m` or `...1mo`. Payloads are orjson objects carrying `v` (the schema version), prices and
volumes as exact decimal strings and times as epoch milliseconds. Every candle carries `seq`, its
number in the key's stream (1, 2, 3, ... without holes), and `epoch`, which names one life of the
key in one hub (a key released by everyone and acquired again starts over at seq 1, new epoch).

Snapshot requests and replies travel as one orjson frame each over DEALER -> ROUTER.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import orjson

from qkt.hub.errors import WireError
from qkt.market.models import Candle, CandleKey, candle_of
from qkt.money import parse_decimal, plain

WIRE_VERSION: Final = 1
TOPIC_PREFIX: Final = b"candle."
# NUL never occurs in a broker, symbol or timeframe, so `...1m\0` is a prefix of nothing else.
TERMINATOR: Final = b"\x00"

ReplyError = Literal["unknown_key", "bad_request"]
_REPLY_ERRORS: Final[frozenset[str]] = frozenset({"unknown_key", "bad_request"})


@dataclass(frozen=True, slots=True)
class SequencedCandle:
    """A closed candle as the hub published it: with its key's sequence number and epoch."""

    candle: Candle
    seq: int
    epoch: int
    # Set by HubSubscriber on candles it delivers from the hub's snapshot (history asked for at
    # subscribe time), never on live ones: a worker warms up on history and trades only live.
    # Delivery metadata, not part of the candle's identity: equality ignores it.
    snapshot: bool = field(default=False, compare=False)

    @property
    def key(self) -> CandleKey:
        return self.candle.key


# Built for every candle the hub publishes and each subscriber receives: filled slot by slot, as
# market.models.candle_of does for the Candle inside (a frozen __init__ costs twice as much).
_SEQUENCED_SLOTS: Final = tuple(
    getattr(SequencedCandle, name).__set__ for name in SequencedCandle.__slots__
)


def sequenced(candle: Candle, seq: int, epoch: int) -> SequencedCandle:
    """`SequencedCandle(candle, seq, epoch)`, built faster (see above)."""
    item: SequencedCandle = object.__new__(SequencedCandle)
    set_candle, set_seq, set_epoch, set_snapshot = _SEQUENCED_SLOTS
    set_candle(item, candle)
    set_seq(item, seq)
    set_epoch(item, epoch)
    set_snapshot(item, False)
    return item


@dataclass(frozen=True, slots=True)
class SyncMarker:
    """Sent on a topic whenever someone subscribes to it: proof that a subscription is live."""

    topic: bytes


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """ "The candles of `key` after `after_seq`, at most the last `limit` of them" (None: all)."""

    request_id: int
    key: CandleKey
    after_seq: int = 0
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class SnapshotReply:
    """The hub's answer: candles in seq order and `seq`, the key's latest seq when it answered."""

    request_id: int
    key: CandleKey | None  # None only in the answer to a request too broken to name one
    epoch: int
    seq: int
    candles: tuple[SequencedCandle, ...] = ()
    error: ReplyError | None = None
    message: str = ""


def topic(key: CandleKey) -> bytes:
    """The PUB topic of `key`, terminator included: what a SUB socket subscribes to."""
    parts = (key.broker, key.symbol, key.timeframe.text)
    # A dot in the broker would make two keys share a topic; symbols may hold dots (BRK.B).
    if "." in key.broker or any("\x00" in part for part in parts):
        raise WireError(f"candle key {key} cannot be a topic: no '.' in the broker, no NUL bytes")
    return TOPIC_PREFIX + ".".join(parts).encode() + TERMINATOR


def is_candle_topic(data: bytes) -> bool:
    """True if `data` has the shape of a full candle topic (not a prefix subscription)."""
    return data.startswith(TOPIC_PREFIX) and data.endswith(TERMINATOR) and len(data) > 8


def encode_candle(item: SequencedCandle) -> list[bytes]:
    """The two PUB frames of a published candle."""
    c = item.candle
    topic_frame, head = _key_frames(c.key)
    # The hub encodes every candle it publishes: the key's part of the object is made once
    # (and escaped by orjson), the rest formatted in, half the cost of a dict for orjson.
    # Ints and plain decimals (digits, sign, point) need no escaping.
    rest = (
        f'{item.epoch},"seq":{item.seq},"open_ms":{c.open_ms},"open":"{plain(c.open)}",'
        f'"high":"{plain(c.high)}","low":"{plain(c.low)}","close":"{plain(c.close)}",'
        f'"volume":"{plain(c.volume)}"}}'
    )
    return [topic_frame, head + rest.encode()]


# A hub publishes a handful of keys many times: their topic and payload head are made once each.
@functools.lru_cache(maxsize=4096)
def _key_frames(key: CandleKey) -> tuple[bytes, bytes]:
    head = b'{"v":%d,"type":"candle","key":%s,"epoch":' % (WIRE_VERSION, orjson.dumps(str(key)))
    return topic(key), head


def encode_sync(topic_frame: bytes) -> list[bytes]:
    """The two PUB frames of a sync marker on `topic_frame`."""
    return [topic_frame, orjson.dumps({"v": WIRE_VERSION, "type": "sync"})]


def decode_message(frames: Sequence[bytes | memoryview]) -> SequencedCandle | SyncMarker:
    """Decode a PUB message; raise WireError for anything that is not one we sent."""
    if len(frames) != 2:
        raise WireError(f"expected 2 frames [topic, payload], got {len(frames)}")
    topic_frame = bytes(frames[0])
    obj = _load(frames[1])
    # The usual message, a well-formed candle, in one look; anything else is told apart (and a
    # refusal explained) below.
    get = obj.get
    key_text, seq, epoch = get("key"), get("seq"), get("epoch")
    if get("type") == "candle" and type(key_text) is str and type(seq) is int and seq >= 1:
        key, key_topic = _known_key(key_text)
        if key_topic == topic_frame and type(epoch) is int:
            return sequenced(_candle(key, obj), seq, epoch)
    if not is_candle_topic(topic_frame):
        raise WireError(f"not a candle topic: {topic_frame[:80]!r}")
    kind = _get(obj, "type", str)
    if kind == "sync":
        return SyncMarker(topic_frame)
    if kind != "candle":
        raise WireError(f"unknown message type {kind!r}")
    key, key_topic = _known_key(_get(obj, "key", str))
    if key_topic != topic_frame:
        raise WireError(f"topic {topic_frame!r} does not match the payload's key {key}")
    return SequencedCandle(_candle(key, obj), _positive(obj, "seq"), _get(obj, "epoch", int))


def encode_request(request: SnapshotRequest) -> bytes:
    """The one frame of a snapshot request."""
    return orjson.dumps(
        {
            "v": WIRE_VERSION,
            "type": "snapshot",
            "id": request.request_id,
            "key": str(request.key),
            "after_seq": request.after_seq,
            "limit": request.limit,
        }
    )


def decode_request(frame: bytes) -> SnapshotRequest:
    """Decode a snapshot request; raise WireError if it is malformed."""
    obj = _load(frame)
    if _get(obj, "type", str) != "snapshot":
        raise WireError(f"expected a snapshot request, got type {obj['type']!r}")
    limit = obj.get("limit")
    if limit is not None and (not _is_int(limit) or limit < 0):
        raise WireError(f"'limit' must be null or an integer >= 0, got {limit!r}")
    after_seq = _get(obj, "after_seq", int)
    if after_seq < 0:
        raise WireError(f"'after_seq' must be >= 0, got {after_seq}")
    return SnapshotRequest(_get(obj, "id", int), _key(obj), after_seq, limit)


def request_id_of(frame: bytes) -> int | None:
    """Best effort: the id of a request too broken to decode, so that its error can be addressed."""
    try:
        value = orjson.loads(frame).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if _is_int(value) else None


def encode_reply(reply: SnapshotReply) -> bytes:
    """The one frame of a snapshot reply; candles travel as compact arrays."""
    rows = [
        [
            item.seq,
            item.candle.open_ms,
            plain(item.candle.open),
            plain(item.candle.high),
            plain(item.candle.low),
            plain(item.candle.close),
            plain(item.candle.volume),
        ]
        for item in reply.candles
    ]
    return orjson.dumps(
        {
            "v": WIRE_VERSION,
            "type": "snapshot_reply",
            "id": reply.request_id,
            "key": None if reply.key is None else str(reply.key),
            "epoch": reply.epoch,
            "seq": reply.seq,
            "candles": rows,
            "error": reply.error,
            "message": reply.message,
        }
    )


def decode_reply(frame: bytes) -> SnapshotReply:
    """Decode a snapshot reply; raise WireError if it is malformed."""
    obj = _load(frame)
    if _get(obj, "type", str) != "snapshot_reply":
        raise WireError(f"expected a snapshot reply, got type {obj['type']!r}")
    key = None if obj.get("key") is None else _key(obj)
    epoch = _get(obj, "epoch", int)
    error = obj.get("error")
    if error is not None and error not in _REPLY_ERRORS:
        raise WireError(f"unknown snapshot error code {error!r}")
    rows = _get(obj, "candles", list)
    if rows and key is None:
        raise WireError("a snapshot reply with candles must name its key")
    candles = tuple(_row(key, epoch, row) for row in rows) if key is not None else ()
    return SnapshotReply(
        request_id=_get(obj, "id", int),
        key=key,
        epoch=epoch,
        seq=_get(obj, "seq", int),
        candles=candles,
        error=error,
        message=str(obj.get("message", "")),
    )


# -- helpers ---------------------------------------------------------------------------------


_ROW_FIELDS: Final = ("seq", "open_ms", "open", "high", "low", "close", "volume")


def _row(key: CandleKey, epoch: int, row: object) -> SequencedCandle:
    if not isinstance(row, list) or len(row) != len(_ROW_FIELDS):
        raise WireError(f"a snapshot row must be [seq, open_ms, o, h, l, c, v], got {row!r}")
    fields = dict(zip(_ROW_FIELDS, row, strict=True))
    return SequencedCandle(_candle(key, fields), _positive(fields, "seq"), epoch)


def _load(payload: bytes | memoryview) -> dict[str, Any]:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise WireError(f"payload is not JSON: {error}") from None
    if not isinstance(obj, dict):
        raise WireError(f"payload must be a JSON object, got {type(obj).__name__}")
    version = obj.get("v")
    if version != WIRE_VERSION:
        raise WireError(f"unsupported wire version {version!r} (this qkt speaks {WIRE_VERSION})")
    return obj


def _is_int(value: object) -> bool:
    return type(value) is int  # JSON gives exact ints; a bool is not one


def _get(obj: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = obj.get(name)
    ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise WireError(f"field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def _positive(obj: dict[str, Any], name: str) -> int:
    value: int = _get(obj, name, int)
    if value < 1:
        raise WireError(f"field {name!r} must be >= 1, got {value}")
    return value


def _key(obj: dict[str, Any]) -> CandleKey:
    return _known_key(_get(obj, "key", str))[0]


# Every candle names its key: parse each key text once, not once a message (bad ones are not
# cached: they raise). A subscriber sees a handful of keys; the bound only caps a hostile peer.
@functools.lru_cache(maxsize=4096)
def _known_key(text: str) -> tuple[CandleKey, bytes]:
    """The key that `text` names and its topic; WireError if it is not a key or not a topic."""
    try:
        key = CandleKey.parse(text)
    except ValueError as error:
        raise WireError(str(error)) from None
    return key, topic(key)


_PRICES: Final = ("open", "high", "low", "close", "volume")


def _candle(key: CandleKey, obj: dict[str, Any]) -> Candle:
    # A subscriber decodes every candle of its keys, five decimals each: the usual case (an int
    # time, five strings that are finite decimals) is tried in one go, and the field-by-field
    # checks that explain a refusal run only when it fails.
    get = obj.get
    open_ms, o, h, low, c, v = (
        get("open_ms"),
        get("open"),
        get("high"),
        get("low"),
        get("close"),
        get("volume"),
    )
    if type(open_ms) is int and type(o) is type(h) is type(low) is type(c) is type(v) is str:
        try:
            candle = candle_of(
                key, open_ms, Decimal(o), Decimal(h), Decimal(low), Decimal(c), Decimal(v)
            )
        except InvalidOperation:
            pass
        else:
            if (candle.open.is_finite() and candle.high.is_finite() and candle.low.is_finite()
                    and candle.close.is_finite() and candle.volume.is_finite()):  # fmt: skip
                return candle
    return Candle(key, _get(obj, "open_ms", int), *(_decimal(obj, name) for name in _PRICES))


def _decimal(obj: dict[str, Any], name: str) -> Decimal:
    """Field `name` as an exact decimal, or a WireError that says what came instead."""
    try:
        return parse_decimal(_get(obj, name, str))
    except ValueError as error:
        raise WireError(f"field {name!r}: {error}") from None
