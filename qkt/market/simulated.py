"""SimulatedFeed (`SIM`): a seeded simulated market per symbol on its own sped-up clock; no network.

Each symbol's market is a pure function of market time (`simpath.PricePath`): a sum of slow and
fast swings whose sizes grow like a random walk's, with a 15-30 minute swing that makes EMA
crossovers and RSI extremes happen every few tens of market minutes, as on a real chart. About
ten trades print per market second at the symbol's tick and lot size. Trades are generated
lazily, a market second at a time, only when the clock has passed them: the feed wakes once a
wall second (and when a subscribed key's candle is due) to draw what passed, so that a candle is
out within milliseconds of its close rather than after a minute's drawing. The past is served
by `SimHistory` from the same path, so history and the live walk meet exactly; the clock
(`simclock`) can continue a previous daemon's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Final

from qkt.market.aggregate import CandleAggregator, merge_closed
from qkt.market.feed import FeedOptions, FeedState, FeedStatus
from qkt.market.history import HistoryError, HistorySource
from qkt.market.models import Candle, CandleKey
from qkt.market.outbox import Outbox
from qkt.market.profiles import PROFILES, Profile, profile_for
from qkt.market.simclock import MarketClock, start_ms_for
from qkt.market.simpath import PricePath

_MAX_STEP_MS: Final = 60_000  # generate at most a market minute per step, then let others run
# Draw the trades as market time passes, at least once a wall second, not all of a candle's at
# its close: a minute of 20 symbols' trades took ~150 ms to draw and aggregate, all of it between
# the candle's end and its publishing, while every strategy on the key waited for it.
_DRAW_EVERY_S: Final = 1.0
_PAGE: Final = 100  # candles per history page (the loop runs between pages)

__all__ = [
    "PROFILES",
    "MarketClock",
    "Profile",
    "SimHistory",
    "SimulatedFeed",
    "Walk",
    "profile_for",
]


class Walk:
    """One symbol's trades from `start_ms` on, generated lazily a market second at a time."""

    def __init__(self, seed: int, symbol: str, start_ms: int) -> None:
        self.path = PricePath(seed, symbol)
        self.profile = self.path.profile
        self._second = start_ms // 1000
        self._start_ms = start_ms
        self._pending: list[tuple[int, Decimal, Decimal]] = []

    def trades_until(self, now_ms: int) -> list[tuple[int, Decimal, Decimal]]:
        """Every trade with time <= `now_ms` not returned before: (ts_ms, price, size)."""
        out = [trade for trade in self._pending if trade[0] <= now_ms]
        self._pending = [trade for trade in self._pending if trade[0] > now_ms]
        while self._second * 1000 <= now_ms:
            for trade in self.path.second(self._second):
                if trade[0] < self._start_ms:
                    continue
                (out if trade[0] <= now_ms else self._pending).append(trade)
            self._second += 1
        return out


class _Market:
    """One simulated symbol: its walk, and one aggregator per broker name asked for."""

    def __init__(self, walk: Walk) -> None:
        self.walk = walk
        self.aggregators: dict[str, CandleAggregator] = {}


class SimulatedFeed:
    """The `SIM` broker: a seeded simulated market (any key's broker is accepted, for --sim)."""

    def __init__(self, options: FeedOptions, broker: str = "SIM") -> None:
        self._broker = broker
        self._seed = options.seed
        start = options.sim_start_ms
        if start is None:
            start = start_ms_for(options.sim_clock_file, options.speed)
        self.clock = MarketClock(start, options.speed)
        self._markets: dict[str, _Market] = {}
        self._outbox = Outbox()
        self._last_step: float | None = None
        self._history = SimHistory(options.seed, self.clock)

    @property
    def market_speed(self) -> float:
        """Market seconds per wall second: a key's candles come every `tf / speed` wall seconds."""
        return self.clock.speed

    def history_source(self) -> SimHistory:
        """The past of this feed's market, on its clock (continuous with the live walk)."""
        return self._history

    @property
    def broker(self) -> str:
        """The broker name this feed serves."""
        return self._broker

    def subscribe(self, key: CandleKey) -> None:
        """Start simulating `key` (its symbol's market starts now on the market clock)."""
        if key in self._outbox.keys:
            return
        now = self.clock.now_ms()
        market = self._markets.get(key.symbol)
        if market is None:
            market = self._markets[key.symbol] = _Market(Walk(self._seed, key.symbol, now))
        aggregator = market.aggregators.get(key.broker)
        if aggregator is None:
            aggregator = market.aggregators[key.broker] = CandleAggregator(key.broker, key.symbol)
        aggregator.add_timeframe(key.timeframe, since_ms=now)
        self._outbox.keys.add(key)
        self._outbox.wake()

    def unsubscribe(self, key: CandleKey) -> None:
        """Stop producing `key`; the symbol's market goes when its last key does."""
        if key not in self._outbox.keys:
            return
        self._outbox.keys.discard(key)
        market = self._markets[key.symbol]
        aggregator = market.aggregators[key.broker]
        aggregator.remove_timeframe(key.timeframe)
        if not aggregator.timeframes:
            del market.aggregators[key.broker]
        if not market.aggregators:
            del self._markets[key.symbol]

    async def candles(self) -> AsyncIterator[Candle]:
        """Run the market clock and yield closed candles until `aclose()`."""
        self.clock.start()
        outbox = self._outbox
        while not outbox.closed:
            now = self.clock.now_ms()
            outbox.put(self._step(now))
            for candle in outbox.pop_ready():
                yield candle
            wake_ms = self._next_wake_ms(now)
            delay = self.clock.wall_seconds(max(wake_ms - self.clock.now_ms(), 0))
            await outbox.wait(max(delay, 0.001) if wake_ms >= 0 else None)

    def status(self) -> FeedStatus:
        """LIVE while running (there is no upstream to lose), CLOSED after `aclose()`."""
        if self._outbox.closed:
            return FeedStatus(FeedState.CLOSED, None)
        if self._last_step is None:
            return FeedStatus(FeedState.LIVE, None)
        return FeedStatus(FeedState.LIVE, int((time.monotonic() - self._last_step) * 1000))

    async def aclose(self) -> None:
        """End `candles()`."""
        self._outbox.close()

    def _step(self, now_ms: int) -> list[Candle]:
        self._last_step = time.monotonic()
        batches: list[list[Candle]] = []
        for market in self._markets.values():
            aggregators = list(market.aggregators.values())
            trades = market.walk.trades_until(now_ms)
            for aggregator in aggregators:
                on_trade = aggregator.on_trade
                for ts, price, size in trades:
                    closed = on_trade(ts, price, size)
                    if closed:
                        batches.append(closed)
                batches.append(aggregator.advance(now_ms))
        return merge_closed(batches)

    def _next_wake_ms(self, now_ms: int) -> int:
        """When to step next (market ms): the next close of a subscribed key, or sooner, so that
        a close finds at most a wall second of trades left to draw; -1 if no key is wanted."""
        ends = [key.timeframe.bucket(now_ms) + key.timeframe.ms for key in self._outbox.keys]
        step_ms = min(_MAX_STEP_MS, max(1, int(_DRAW_EVERY_S * 1000 * self.clock.speed)))
        return min(min(ends), now_ms + step_ms) if ends else -1


class SimHistory:
    """`HistorySource` of the simulated market: candles of the same price path as the live walk.

    A candle opens at the path's price at its start and closes at the price at its end, exactly
    as the live one would; its high, low and volume are drawn for the candle (summing a day of
    trades per candle would make 5,000 candles take minutes).
    """

    def __init__(self, seed: int, clock: MarketClock | None = None) -> None:
        self._seed = seed
        self._clock = clock
        self._paths: dict[str, PricePath] = {}

    @property
    def name(self) -> str:
        """`sim`."""
        return "sim"

    def now_ms(self) -> int:
        """The feed's market clock, or the wall clock for a source without a feed (`qkt fetch`)."""
        return self._clock.now_ms() if self._clock is not None else time.time_ns() // 10**6

    async def pages(
        self, key: CandleKey, start_ms: int, end_ms: int
    ) -> AsyncIterator[list[Candle]]:
        """Closed candles of `key` in [start, end), oldest first, `_PAGE` a page."""
        if key.timeframe.ms < 1000:
            raise HistoryError(f"{key}: no history below one second", permanent=True)
        path = self._paths.get(key.symbol)
        if path is None:
            path = self._paths[key.symbol] = PricePath(self._seed, key.symbol)
        ms = key.timeframe.ms
        first = -(-start_ms // ms) * ms  # the first bucket opening at or after start
        end = min(end_ms, key.timeframe.bucket(self.now_ms()))
        opens = range(first, end - ms + 1, ms)
        for page in range(0, len(opens), _PAGE):
            yield path.candles(key, opens[page : page + _PAGE])
            await asyncio.sleep(0)  # drawing candles is CPU: let the hub's loop breathe

    async def aclose(self) -> None:
        """Nothing to release."""


def _source_check(source: SimHistory) -> HistorySource:
    return source  # mypy: SimHistory satisfies the protocol
