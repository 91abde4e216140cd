"""SimulatedFeed: deterministic per seed, plausible prices, lazy generation, live subscriptions."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import talib

from qkt.market.aggregate import CandleAggregator
from qkt.market.feed import FeedOptions, FeedState
from qkt.market.models import Candle, CandleKey, Timeframe
from qkt.market.simulated import MarketClock, SimulatedFeed, Walk, profile_for
from tests.helpers import wait_until_async
from tests.market.feeds import Collector

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BTC_1M = CandleKey.parse("SIM:BTCUSDT:1m")
BTC_1S = CandleKey.parse("SIM:BTCUSDT:1s")
ETH_5M = CandleKey.parse("SIM:ETHUSDT:5m")


def _record(seed: int, count: int = 6) -> list[Candle]:
    """The first `count` 1m candles of BTCUSDT (and what else closed meanwhile) at high speed."""

    async def scenario() -> list[Candle]:
        feed = SimulatedFeed(FeedOptions(seed=seed, speed=3_000, sim_start_ms=T0))
        for key in (BTC_1M, BTC_1S, ETH_5M):
            feed.subscribe(key)
        async with Collector(feed) as got:
            await wait_until_async(lambda: len(got.of(BTC_1M)) >= count)
        # Only what had surely closed when the recording stopped: the clock may run on a bit.
        return [c for c in got.candles if c.end_ms <= T0 + count * 60_000]

    return asyncio.run(asyncio.wait_for(scenario(), timeout=60))


def test_same_seed_and_start_give_the_same_candles_and_another_seed_differs() -> None:
    first, second, other = _record(7), _record(7), _record(8)
    assert first == second
    assert [c.open_ms for c in first if c.key == BTC_1M] == [T0 + i * 60_000 for i in range(6)]
    assert len([c for c in first if c.key == BTC_1S]) == 360  # ~10 trades/s: every second prints
    assert [c.open_ms for c in first if c.key == ETH_5M] == [T0]
    closes = [c.close for c in first if c.key == BTC_1M]
    assert closes != [c.close for c in other if c.key == BTC_1M]
    # Candles of one instant come shorter timeframe first; everything in close order.
    order = [(c.end_ms, c.key.timeframe.ms) for c in first]
    assert order == sorted(order)


def test_prices_are_plausible_decimals_on_the_symbols_tick() -> None:
    for symbol, low, high in (
        ("BTCUSDT", 20_000, 200_000),
        ("ETHUSDT", 1_000, 10_000),
        ("SOLUSDT", 30, 600),
        ("WHATEVERUSDT", 0.01, 100_000),
    ):
        walk = Walk(1, symbol, T0)
        trades = walk.trades_until(T0 + 3_600_000 - 1)
        tick = profile_for(symbol).tick
        assert 9 <= len(trades) / 3_600 <= 11  # about ten trades per market second
        prices = [price for _, price, _ in trades]
        assert all(isinstance(p, Decimal) and p % tick == 0 for p in prices)
        assert low <= min(prices) and max(prices) <= high, symbol
        assert all(size > 0 for _, _, size in trades)
        assert [ts for ts, _, _ in trades] == sorted(ts for ts, _, _ in trades)
    assert profile_for("WHATEVERUSDT") == profile_for("WHATEVERUSDT")


def test_the_walk_trends_and_reverts_enough_for_ema_crossovers_and_rsi_extremes() -> None:
    """Checked with TA-Lib: within two market hours (four wall minutes at speed 30)."""
    for seed in range(5):
        aggregator = CandleAggregator("SIM", "BTCUSDT")
        aggregator.add_timeframe(Timeframe.parse("1m"), since_ms=T0)
        candles: list[Candle] = []
        for trade in Walk(seed, "BTCUSDT", T0).trades_until(T0 + 120 * 60_000):
            candles += aggregator.on_trade(*trade)
        close = np.array([float(c.close) for c in candles])
        side = np.sign(talib.EMA(close, 12) - talib.EMA(close, 26))[26:]
        rsi = talib.RSI(close, 14)[15:]
        assert np.count_nonzero(side[1:] != side[:-1]) >= 2, seed
        assert (rsi > 70).any() or (rsi < 30).any(), seed


def test_speed_maps_market_time_to_wall_time() -> None:
    clock = MarketClock(T0, 30)
    assert clock.now_ms() == T0  # stands still until started
    assert clock.wall_seconds(60_000) == 2.0  # a 1m candle every 2 s at speed 30
    assert MarketClock(T0, 1).wall_seconds(1_000) == 1.0


def test_subscribing_while_running_starts_with_whole_candles_and_unsubscribe_stops() -> None:
    async def scenario() -> None:
        feed = SimulatedFeed(FeedOptions(seed=3, speed=600, sim_start_ms=T0))
        feed.subscribe(BTC_1S)
        async with Collector(feed) as got:
            await wait_until_async(lambda: len(got.of(BTC_1S)) >= 30)
            joined = feed.clock.now_ms()
            feed.subscribe(BTC_1M)
            await wait_until_async(lambda: len(got.of(BTC_1M)) >= 2)
            assert got.of(BTC_1M)[0].open_ms >= joined  # the half-seen minute is not emitted
            feed.unsubscribe(BTC_1S)
            feed.unsubscribe(BTC_1S)
            left = len(got.of(BTC_1S))
            await wait_until_async(lambda: len(got.of(BTC_1M)) >= 4)
            assert len(got.of(BTC_1S)) == left
            assert feed.status().state is FeedState.LIVE
        assert feed.status().state is FeedState.CLOSED
        minute = got.of(BTC_1M)[0]
        seconds = [c for c in got.candles if c.key == BTC_1S and minute.open_ms <= c.open_ms]
        assert seconds and seconds[0].open_ms == minute.open_ms  # one walk feeds both

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))


def test_the_feed_draws_trades_as_time_passes_not_all_of_a_candle_at_its_close() -> None:
    # At speed 1 an hour candle closes an hour from now; the feed still steps (draws the trades
    # that passed) every wall second, so that the close finds a second of them left, not an hour.
    async def scenario() -> int:
        feed = SimulatedFeed(FeedOptions(seed=1, speed=1, sim_start_ms=T0 + 60_000))
        feed.subscribe(CandleKey.parse("SIM:BTCUSDT:1h"))
        steps, last_age = 0, None

        def stepped_again() -> bool:
            nonlocal steps, last_age
            age = feed.status().last_message_age_ms
            if age is not None and (last_age is None or age < last_age):
                steps += 1  # the age since the feed's last step fell: it stepped
            last_age = age
            return steps >= 3

        async with Collector(feed) as got:
            await wait_until_async(stepped_again, timeout=10, interval=0.05)
        return len(got.candles)

    assert asyncio.run(asyncio.wait_for(scenario(), timeout=60)) == 0  # and no candle closed


def test_sim_serves_any_brokers_keys_for_sim_mode() -> None:
    key = CandleKey.parse("BYBIT:BTCUSDT:1s")

    async def scenario() -> list[Candle]:
        feed = SimulatedFeed(FeedOptions(seed=1, speed=100, sim_start_ms=T0))
        feed.subscribe(key)
        async with Collector(feed) as got:
            await wait_until_async(lambda: len(got.candles) >= 3)
        return got.candles

    assert {c.key for c in asyncio.run(scenario())} == {key}
