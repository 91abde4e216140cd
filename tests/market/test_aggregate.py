"""CandleAggregator against a plain loop over the same trades (an independent computation)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkt.market.aggregate import CandleAggregator
from qkt.market.models import Candle, CandleKey, Timeframe, Trade

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a day boundary
TIMEFRAMES = ("1s", "1m", "5m", "1h")

Row = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]


def _trades(seed: int) -> tuple[list[Trade], list[int]]:
    """Six hours of trades in bursts separated by quiet gaps; returns trades and the indexes of
    the last trade before each gap."""
    rng = random.Random(seed)
    trades: list[Trade] = []
    gaps: list[int] = []
    ts = T0 + rng.randrange(5_000)
    price = Decimal("100.00")
    while ts < T0 + 6 * 3_600_000:
        for _ in range(rng.randrange(1, 400)):
            price = max(Decimal("0.01"), price + Decimal(rng.randrange(-50, 51)) / 100)
            trades.append(Trade("TEST", ts, price, Decimal(rng.randrange(1, 1000)) / 1000))
            ts += rng.choice((0, 1, 7, 150, 999, 2_500))
        gaps.append(len(trades) - 1)
        # Quiet: from a few seconds to over an hour without a trade (several empty buckets).
        ts += rng.choice((3_000, 61_000, 7 * 60_000, 65 * 60_000))
    return trades, gaps


def _reference(trades: Sequence[Trade], timeframe_ms: int) -> list[Row]:
    """OHLCV per bucket that holds trades, by a plain loop; empty buckets are absent."""
    buckets: dict[int, list[Trade]] = {}
    for trade in trades:
        buckets.setdefault(trade.ts_ms // timeframe_ms * timeframe_ms, []).append(trade)
    rows = []
    for open_ms in sorted(buckets):
        group = buckets[open_ms]
        prices = [t.price for t in group]
        volume = sum((t.size for t in group), Decimal(0))
        rows.append((open_ms, prices[0], max(prices), min(prices), prices[-1], volume))
    return rows


def _row(candle: Candle) -> Row:
    return (candle.open_ms, candle.open, candle.high, candle.low, candle.close, candle.volume)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_trades_to_candles_match_a_plain_loop_and_quiet_periods_close_by_the_clock(
    seed: int,
) -> None:
    trades, gaps = _trades(seed)
    aggregator = CandleAggregator("SIM", "TEST")
    for text in TIMEFRAMES:
        aggregator.add_timeframe(Timeframe.parse(text), since_ms=T0)
    emitted: list[Candle] = []
    gap_ends = set(gaps)
    for index, trade in enumerate(trades):
        emitted += aggregator.on_trade(trade.ts_ms, trade.price, trade.size)
        if index in gap_ends:
            # The clock moves past the last bucket's end before the next trade: it must close.
            now = Timeframe.parse("1s").bucket(trade.ts_ms) + 1_000
            closed = aggregator.advance(now)
            assert [c.key.timeframe.text for c in closed][:1] == ["1s"]
            assert closed[0].open_ms == Timeframe.parse("1s").bucket(trade.ts_ms)
            emitted += closed
    emitted += aggregator.advance(trades[-1].ts_ms + 3_600_000)
    assert aggregator.flush() == []
    for text in TIMEFRAMES:
        timeframe = Timeframe.parse(text)
        got = [_row(c) for c in emitted if c.key.timeframe == timeframe]
        assert got == _reference(trades, timeframe.ms), text
    # Every candle came out once, in close order, shorter timeframe first at equal close.
    order = [(c.end_ms, c.key.timeframe.ms) for c in emitted]
    assert order == sorted(order)
    assert len({(c.key, c.open_ms) for c in emitted}) == len(emitted)


def test_higher_timeframes_from_base_candles_match_the_same_trades() -> None:
    trades, _ = _trades(7)
    one_minute = CandleAggregator("SIM", "TEST")
    one_minute.add_timeframe(Timeframe.parse("1m"), since_ms=T0)
    base: list[Candle] = []
    for trade in trades:
        base += one_minute.on_trade(trade.ts_ms, trade.price, trade.size)
    base += one_minute.flush()

    derived = CandleAggregator("SIM", "TEST", base=Timeframe.parse("1m"))
    for text in ("1m", "5m", "1h"):
        derived.add_timeframe(Timeframe.parse(text))
    emitted: list[Candle] = []
    for candle in base:
        emitted += derived.on_candle(candle)
    emitted += derived.flush()
    for text in ("5m", "1h"):
        timeframe = Timeframe.parse(text)
        got = [_row(c) for c in emitted if c.key.timeframe == timeframe]
        assert got == _reference(trades, timeframe.ms), text
    # A bucket whose last base candle arrives closes with it, not a bucket later.
    assert all(c.key.timeframe.text == "1m" or c.end_ms % c.key.timeframe.ms == 0 for c in emitted)


def test_a_timeframe_counts_only_whole_buckets_from_its_start() -> None:
    aggregator = CandleAggregator("SIM", "TEST")
    minute = Timeframe.parse("1m")
    aggregator.add_timeframe(minute, since_ms=T0 + 30_000)  # subscribed mid-minute
    one = Decimal(1)
    assert aggregator.on_trade(T0 + 31_000, one, one) == []
    closed = aggregator.on_trade(T0 + 61_000, one, one)
    assert closed == []  # the first minute began before the subscription: half-built, dropped
    [candle] = aggregator.on_trade(T0 + 121_000, one, one)
    assert candle.open_ms == T0 + 60_000
    assert candle.key == CandleKey("SIM", "TEST", minute)


def test_an_interrupted_trade_stream_drops_the_forming_candle_and_resumes_whole() -> None:
    aggregator = CandleAggregator("SIM", "TEST")
    aggregator.add_timeframe(Timeframe.parse("1m"), since_ms=T0)
    one = Decimal(1)
    aggregator.on_trade(T0 + 1_000, one, one)
    aggregator.on_trade(T0 + 70_000, one, one)  # closes minute 0
    assert aggregator.interrupt(T0 + 80_000) == []
    aggregator.on_trade(T0 + 90_000, one, one)  # while cut off: counts for nothing
    aggregator.resume(T0 + 100_000)
    aggregator.on_trade(T0 + 110_000, one, one)
    assert aggregator.on_trade(T0 + 130_000, one, one) == []  # minute 1 was incomplete
    [candle] = aggregator.on_trade(T0 + 190_000, one, one)
    assert candle.open_ms == T0 + 120_000


def test_base_candles_must_divide_the_timeframe() -> None:
    aggregator = CandleAggregator("SIM", "TEST", base=Timeframe.parse("2m"))
    with pytest.raises(ValueError, match="3m cannot be built from 2m"):
        aggregator.add_timeframe(Timeframe.parse("3m"))


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0, 1, 13, 400, 999, 1_000, 59_999, 60_000, 301_000, 3_700_000]),
            st.integers(1, 10_000),
            st.integers(0, 1_000),
            st.booleans(),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_any_trade_series_with_any_clock_ticks_gives_the_plain_loop_candles(
    steps: list[tuple[int, int, int, bool]],
) -> None:
    aggregator = CandleAggregator("SIM", "TEST")
    for text in TIMEFRAMES:
        aggregator.add_timeframe(Timeframe.parse(text), since_ms=T0)
    trades: list[Trade] = []
    emitted: list[Candle] = []
    ts = T0
    for delta, price, size, tick in steps:
        ts += delta
        trade = Trade("TEST", ts, Decimal(price) / 100, Decimal(size) / 10)
        trades.append(trade)
        if tick:  # the clock reaches the trade's time before the trade does
            emitted += aggregator.advance(ts)
        emitted += aggregator.on_trade(trade.ts_ms, trade.price, trade.size)
    emitted += aggregator.flush()
    for text in TIMEFRAMES:
        timeframe = Timeframe.parse(text)
        got = [_row(c) for c in emitted if c.key.timeframe == timeframe]
        assert got == _reference(trades, timeframe.ms), text
    order = [(c.end_ms, c.key.timeframe.ms) for c in emitted]
    assert order == sorted(order)


def test_a_trade_for_a_candle_already_closed_is_ignored_not_emitted_again() -> None:
    aggregator = CandleAggregator("SIM", "TEST")
    aggregator.add_timeframe(Timeframe.parse("1s"), since_ms=T0)
    one = Decimal(1)
    aggregator.on_trade(T0 + 999, one, one)
    [closed] = aggregator.advance(T0 + 1_000)
    assert aggregator.on_trade(T0 + 998, Decimal(2), one) == []  # late: its candle is out
    assert aggregator.flush() == []
    [next_one] = aggregator.on_trade(T0 + 5_000, one, one) + aggregator.flush()
    assert (closed.open_ms, closed.high, next_one.open_ms) == (T0, one, T0 + 5_000)
