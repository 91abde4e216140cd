"""replay_candles and CsvReplayFeed on the three `--data` layouts, with the errors they raise."""

from __future__ import annotations

import asyncio
import gzip
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from qkt.errors import UserError
from qkt.market.feed import FeedOptions, FeedState
from qkt.market.models import Candle, CandleKey
from qkt.market.replay import CsvReplayFeed, replay_candles
from tests.helpers import wait_until_async
from tests.market.feeds import Collector

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
HEADER = "timestamp,open,high,low,close,volume\n"


def key(text: str) -> CandleKey:
    return CandleKey.parse(text)


def _minutes(count: int, start: int = T0, iso: bool = False, skip: set[int] | None = None) -> str:
    """`count` 1m rows: open 100+i, high +2, low -1, close +1, volume 1 (minute i)."""
    lines = [HEADER]
    for i in range(count):
        if skip and i in skip:
            continue
        ts = start + i * MINUTE
        stamp = datetime.fromtimestamp(ts / 1000, UTC).isoformat().replace("+00:00", "Z")
        p = 100 + i
        lines.append(f"{stamp if iso else ts},{p},{p + 2},{p - 1},{p + 1},1\n")
    return "".join(lines)


def _ohlcv(candle: Candle) -> tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]:
    return (candle.open_ms, candle.open, candle.high, candle.low, candle.close, candle.volume)


@pytest.mark.parametrize("iso", [False, True], ids=["epoch-ms", "iso-8601"])
def test_one_candle_file_serves_every_stream_aggregated_up(tmp_path: Path, iso: bool) -> None:
    data = tmp_path / "btc.csv"
    data.write_text(_minutes(12, iso=iso))
    keys = [key("BACKTEST:BTCUSDT:5m"), key("BACKTEST:BTCUSDT:1m"), key("BACKTEST:ETHUSDT:1m")]
    candles = list(replay_candles(data, keys))
    assert [_ohlcv(c) for c in candles if c.key == keys[0]] == [
        (T0, Decimal(100), Decimal(106), Decimal(99), Decimal(105), Decimal(5)),
        (T0 + 5 * MINUTE, Decimal(105), Decimal(111), Decimal(104), Decimal(110), Decimal(5)),
        # The data ends two minutes into the third bucket: flushed, partial.
        (T0 + 10 * MINUTE, Decimal(110), Decimal(113), Decimal(109), Decimal(112), Decimal(2)),
    ]
    assert len([c for c in candles if c.key == keys[1]]) == 12
    # Close order: end time, then shorter timeframe, then the order the keys were given in.
    at_five = [str(c.key) for c in candles if c.end_ms == T0 + 5 * MINUTE]
    assert at_five == ["BACKTEST:BTCUSDT:1m", "BACKTEST:ETHUSDT:1m", "BACKTEST:BTCUSDT:5m"]
    order = [(c.end_ms, c.key.timeframe.ms, keys.index(c.key)) for c in candles]
    assert order == sorted(order)


def test_a_folder_holds_one_file_per_symbol_and_start_end_filter(tmp_path: Path) -> None:
    (tmp_path / "BTCUSDT.csv").write_text(_minutes(30))
    with gzip.open(tmp_path / "ETHUSDT.csv.gz", "wt") as handle:
        handle.write(_minutes(30, start=T0 + 2 * MINUTE))
    btc, eth = key("BACKTEST:BTCUSDT:5m"), key("BACKTEST:ETHUSDT:1m")
    candles = list(replay_candles(tmp_path, [btc, eth], T0 + 7 * MINUTE, T0 + 20 * MINUTE))
    # 5m buckets wholly inside [07:00, 20:00): 10 and 15; the 05 bucket began before the start.
    assert [c.open_ms for c in candles if c.key == btc] == [T0 + 10 * MINUTE, T0 + 15 * MINUTE]
    eth_opens = [c.open_ms for c in candles if c.key == eth]
    assert eth_opens == [T0 + i * MINUTE for i in range(7, 20)]
    assert [c.close for c in candles if c.key == eth][0] == Decimal(106)  # ETH minute 7 = row 5
    with pytest.raises(UserError, match="no data for SOLUSDT"):
        list(replay_candles(tmp_path, [key("BACKTEST:SOLUSDT:1m")]))


def _tick_root(tmp_path: Path) -> tuple[Path, list[tuple[int, Decimal, Decimal]]]:
    rng = random.Random(5)
    root = tmp_path / "data"
    folder = root / "symbols" / "BTCUSDT"
    folder.mkdir(parents=True)
    trades = []
    for day in range(2):
        start = T0 + day * 86_400_000
        rows = ["timestamp,symbol,price,volume,bid,ask,bidVolume,askVolume\n"]
        ts = start + 250
        while ts < start + 3 * 3_600_000:
            price = Decimal(rng.randrange(9_000, 11_000)) / 100
            size = Decimal(rng.randrange(1, 500)) / 1000
            trades.append((ts, price, size))
            rows.append(f"{ts},BTCUSDT,{price},{size},{price - 1},{price + 1},1,1\n")
            ts += rng.choice((10, 900, 30_000, 600_000))
        text = "".join(rows)
        name = f"2026-01-0{day + 1}.csv"
        if day == 0:
            (folder / name).write_text(text)
        else:
            with gzip.open(folder / (name + ".gz"), "wt") as handle:
                handle.write(text)
    return root, trades


def test_a_0_13_tick_root_plain_and_gzip_is_aggregated_from_trades(tmp_path: Path) -> None:
    root, trades = _tick_root(tmp_path)
    hour, minute = key("BACKTEST:BTCUSDT:1h"), key("BACKTEST:BTCUSDT:1m")
    candles = list(replay_candles(root, [minute, hour]))
    for k in (minute, hour):
        ms = k.timeframe.ms
        buckets: dict[int, list[tuple[int, Decimal, Decimal]]] = {}
        for trade in trades:
            buckets.setdefault(trade[0] // ms * ms, []).append(trade)
        expected = [
            (
                start,
                group[0][1],
                max(t[1] for t in group),
                min(t[1] for t in group),
                group[-1][1],
                sum((t[2] for t in group), Decimal(0)),
            )
            for start, group in sorted(buckets.items())
        ]
        assert [_ohlcv(c) for c in candles if c.key == k] == expected, k
    assert {c.open_ms // 86_400_000 for c in candles if c.key == hour} == {
        T0 // 86_400_000,
        T0 // 86_400_000 + 1,
    }  # both days: the plain and the gzip file
    second_day = T0 + 86_400_000
    later = list(replay_candles(root, [hour], start_ms=second_day))
    assert later and all(c.open_ms >= second_day for c in later)


def test_a_stream_finer_than_the_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    data = tmp_path / "five.csv"
    data.write_text(HEADER + "".join(f"{T0 + i * 300_000},1,1,1,1,1\n" for i in range(4)))
    with pytest.raises(UserError, match=r"five\.csv: the stream BACKTEST:X:1m is finer than"):
        list(replay_candles(data, [key("BACKTEST:X:1m")]))
    with pytest.raises(UserError, match="cannot be built from 5m"):
        list(replay_candles(data, [key("BACKTEST:X:7m")]))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{ts},1,1,1,abc,1", ":21: close: 'abc' is not a number"),
        ("{ts},1,1,1", "short row: 4 fields, no close,volume"),
        ("not-a-time,1,1,1,1,1", ":1: timestamp: 'not-a-time' is neither epoch digits"),
        ("{ts},5,4,1,1,1", "inconsistent candle"),
        ("{early},1,1,1,1,1", "timestamps must increase"),
        # Prices must be > 0 (a BUY at -100 was once traded); the column is named.
        ("{ts},1,1,-100,1,1", ":19: low: prices must be > 0, got -100"),
        ("{ts},0,1,1,1,1", ":15: open: prices must be > 0, got 0"),
        ("{ts},1,1,1,1,-1", ":23: volume: must be >= 0"),
        ("{ts},1,1,1,NaN,1", ":21: close: 'NaN' is not a number"),
    ],
)
def test_a_malformed_row_is_an_error_naming_file_and_line(
    tmp_path: Path, row: str, message: str
) -> None:
    data = tmp_path / "bad.csv"
    rows = _minutes(5) + row.format(ts=T0 + 5 * MINUTE, early=T0) + "\n"
    data.write_text(rows)
    with pytest.raises(UserError, match=rf"bad\.csv:7:? ?{message}"):
        list(replay_candles(data, [key("BACKTEST:BTCUSDT:1m")]))


def test_epoch_seconds_are_recognised(tmp_path: Path) -> None:
    data = tmp_path / "seconds.csv"
    data.write_text(HEADER + "".join(f"{(T0 + i * MINUTE) // 1000},1,2,1,1,1\n" for i in range(3)))
    candles = list(replay_candles(data, [key("BACKTEST:BTCUSDT:1m")]))
    assert [c.open_ms for c in candles] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]


def test_a_symbol_mapping_reads_each_symbol_from_its_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(_minutes(3))
    (tmp_path / "b.csv").write_text(_minutes(3, start=T0 + MINUTE))
    btc, eth = key("BACKTEST:BTCUSDT:1m"), key("BACKTEST:ETHUSDT:1m")
    mapping = {"BTCUSDT": tmp_path / "a.csv", "ETHUSDT": tmp_path / "b.csv"}
    candles = list(replay_candles(mapping, [btc, eth]))
    assert [c.open_ms for c in candles if c.key == eth] == [T0 + i * MINUTE for i in (1, 2, 3)]
    with pytest.raises(UserError, match="no --data for SOLUSDT"):
        list(replay_candles(mapping, [key("BACKTEST:SOLUSDT:1m")]))


def test_a_wrong_header_is_an_error(tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("time,open,high,low,close\n1,1,1,1,1\n")
    with pytest.raises(
        UserError, match=r"x\.csv:1: expected a header .* \(missing timestamp,volume\)"
    ):
        list(replay_candles(data, [key("BACKTEST:BTCUSDT:1m")]))


def test_csv_replay_feed_replays_subscribed_keys_once_and_idles(tmp_path: Path) -> None:
    data = tmp_path / "BTCUSDT.csv"
    data.write_text(_minutes(3_000))
    one, five = key("BACKTEST:BTCUSDT:1m"), key("BACKTEST:BTCUSDT:5m")

    async def scenario() -> list[Candle]:
        feed = CsvReplayFeed(FeedOptions(data_path=tmp_path))
        feed.subscribe(one)
        feed.subscribe(five)
        async with Collector(feed) as got:
            await wait_until_async(lambda: len(got.of(one)) == 3_000)
            assert feed.status().state is FeedState.LIVE
        assert feed.status().state is FeedState.CLOSED
        return got.candles

    candles = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert candles == list(replay_candles(data, [one, five]))
    with pytest.raises(UserError, match="needs data"):
        CsvReplayFeed(FeedOptions())
    with pytest.raises(UserError, match="no data for ETHUSDT"):
        CsvReplayFeed(FeedOptions(data_path=tmp_path)).subscribe(key("BACKTEST:ETHUSDT:1m"))
