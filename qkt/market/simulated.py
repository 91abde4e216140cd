"""SimulatedFeed (`SIM`): a seeded random market per symbol on its own sped-up clock; no network.

Each symbol's price follows a random walk in log space with regimes (stretches of trend alternate
with stretches that revert to an anchor) plus a slow swing of 15 to 30 market minutes, so that
EMA crossovers and RSI extremes happen every few tens of market minutes, as on a real chart.
About ten trades print per market second at the symbol's tick and lot size. Trades are generated
lazily, a market second at a time, only when the clock has passed them: the feed sleeps until the
next candle of a subscribed key is due.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from qkt.errors import UserError
from qkt.market.aggregate import CandleAggregator, merge_closed
from qkt.market.feed import FeedOptions, FeedState, FeedStatus
from qkt.market.models import Candle, CandleKey
from qkt.market.outbox import Outbox

# Per second of market time, in log-price units.
_SIGMA_S: Final = 0.0001  # ~0.08% per minute, the order of a liquid pair's 1m candles
_TREND_S: Final = 0.000008  # a trend adds ~0.05% per minute: a few tenths of a % per regime
_REVERT_S: Final = 1 / 600  # pull towards the anchor in a ranging regime
_MEAN_REGIME_S: Final = 600  # regimes last ten market minutes on average
_CYCLE_AMPLITUDE: Final = 0.005  # in log-price: a swing of about +-0.5%
_CYCLE_PERIOD_S: Final = (900.0, 1_800.0)  # a full swing takes 15 to 30 market minutes
_TRADES_PER_S: Final = 10
_MAX_STEP_MS: Final = 60_000  # generate at most a market minute per step, then let others run


@dataclass(frozen=True, slots=True)
class Profile:
    """A symbol's plausible price level, tick size and lot size."""

    price: float
    tick: Decimal
    lot: Decimal


PROFILES: Final[dict[str, Profile]] = {
    "BTCUSDT": Profile(65_000.0, Decimal("0.1"), Decimal("0.001")),
    "ETHUSDT": Profile(3_200.0, Decimal("0.01"), Decimal("0.01")),
    "SOLUSDT": Profile(150.0, Decimal("0.01"), Decimal("0.1")),
    "BNBUSDT": Profile(600.0, Decimal("0.1"), Decimal("0.01")),
    "XRPUSDT": Profile(0.6, Decimal("0.0001"), Decimal("10")),
    "DOGEUSDT": Profile(0.15, Decimal("0.00001"), Decimal("100")),
}


def profile_for(symbol: str) -> Profile:
    """The symbol's profile; an unknown symbol gets a stable one derived from its name."""
    known = PROFILES.get(symbol.upper())
    if known is not None:
        return known
    digest = int.from_bytes(hashlib.sha256(symbol.upper().encode()).digest()[:8], "big")
    price = (1 + digest % 9) * 10.0 ** (digest // 9 % 5 - 1)  # 0.1 .. 90,000
    magnitude = math.floor(math.log10(price))
    # Five significant digits of price; a lot worth roughly one to ten units of quote currency.
    return Profile(price, Decimal(1).scaleb(magnitude - 4), Decimal(1).scaleb(-magnitude))


class Walk:
    """One symbol's seeded price path and trades, generated a market second at a time."""

    def __init__(self, seed: int, symbol: str, start_ms: int) -> None:
        self.profile = profile_for(symbol)
        self._rng = random.Random(f"qkt-sim:{seed}:{symbol}")
        self._x = math.log(self.profile.price)
        self._anchor = self._x
        self._drift = 0.0
        # A slow swing on top of the walk (market cycles): what makes EMA crossovers and RSI
        # extremes come every few tens of minutes rather than by luck.
        self._cycle_period_s = self._rng.uniform(*_CYCLE_PERIOD_S)
        self._cycle_phase = self._rng.uniform(0, 2 * math.pi)
        self._second = start_ms // 1000
        self._start_ms = start_ms
        self._pending: list[tuple[int, Decimal, Decimal]] = []
        self._tick = float(self.profile.tick)

    def trades_until(self, now_ms: int) -> list[tuple[int, Decimal, Decimal]]:
        """Every trade with time <= `now_ms` not returned before: (ts_ms, price, size)."""
        out = [trade for trade in self._pending if trade[0] <= now_ms]
        self._pending = [trade for trade in self._pending if trade[0] > now_ms]
        while self._second * 1000 <= now_ms:
            for trade in self._generate_second():
                (out if trade[0] <= now_ms else self._pending).append(trade)
        return out

    def _generate_second(self) -> list[tuple[int, Decimal, Decimal]]:
        rng = self._rng
        base_ms = self._second * 1000
        self._second += 1
        if rng.random() < 1 / _MEAN_REGIME_S:
            # A new regime: trend up, trend down, or range around where the price is now.
            self._drift = rng.choice((_TREND_S, -_TREND_S, 0.0, 0.0)) * rng.uniform(0.5, 1.5)
            self._anchor = self._x
            # Keep the swing continuous while changing its period.
            angle = self._cycle_phase + 2 * math.pi * self._second / self._cycle_period_s
            self._cycle_period_s = rng.uniform(*_CYCLE_PERIOD_S)
            self._cycle_phase = angle - 2 * math.pi * self._second / self._cycle_period_s
        count = rng.randint(_TRADES_PER_S // 2, _TRADES_PER_S * 3 // 2)
        offsets = sorted(rng.randrange(1000) for _ in range(count))
        step_sigma = _SIGMA_S / math.sqrt(count)
        revert = 0.0 if self._drift else (self._anchor - self._x) * _REVERT_S / count
        tick, lot = self._tick, self.profile.lot
        trades = []
        for offset in offsets:
            ts = base_ms + offset
            if ts < self._start_ms:
                continue
            self._x += self._drift / count + revert + rng.gauss(0.0, step_sigma)
            angle = self._cycle_phase + 2 * math.pi * ts / 1000 / self._cycle_period_s
            ticks = max(1, round(math.exp(self._x + _CYCLE_AMPLITUDE * math.sin(angle)) / tick))
            lots = 1 + int(rng.expovariate(0.2))
            trades.append((ts, ticks * self.profile.tick, lots * lot))
        return trades


class MarketClock:
    """Market time that runs `speed` times faster than the wall clock from `start_ms`."""

    def __init__(self, start_ms: int, speed: float) -> None:
        if not speed > 0:
            raise UserError(
                f"--speed must be greater than 0 (market seconds per second), not {speed}"
            )
        self.start_ms = start_ms
        self.speed = speed
        self._t0: float | None = None

    def start(self) -> None:
        """Let market time run (it stands at `start_ms` until then)."""
        if self._t0 is None:
            self._t0 = time.monotonic()

    def now_ms(self) -> int:
        """The market's current time, epoch ms."""
        if self._t0 is None:
            return self.start_ms
        return self.start_ms + int((time.monotonic() - self._t0) * self.speed * 1000)

    def wall_seconds(self, market_ms: int) -> float:
        """Wall seconds that `market_ms` of market time take."""
        return market_ms / 1000 / self.speed


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
        start = (
            options.sim_start_ms if options.sim_start_ms is not None else time.time_ns() // 10**6
        )
        self.clock = MarketClock(start, options.speed)
        self._markets: dict[str, _Market] = {}
        self._outbox = Outbox()
        self._last_step: float | None = None

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
        """When the next candle of a subscribed key closes (market ms), or -1 if none is wanted."""
        ends = [key.timeframe.bucket(now_ms) + key.timeframe.ms for key in self._outbox.keys]
        return min(min(ends), now_ms + _MAX_STEP_MS) if ends else -1
