"""The simulated market as a pure function of market time: its past costs no more than now.

A symbol's log price at second `s` is its profile price times a sum of sine waves drawn once from
(seed, symbol): periods from two minutes to two months with amplitudes growing like a random
walk's spread (sqrt of the period), swings of 15-30 and 40-90 minutes that make EMA crossovers
and RSI extremes come every few tens of minutes, and a little value noise for roughness. Inside
a second, trades are drawn from a generator seeded by (seed, symbol, second) on a bridge from the
price at the second's start to the price at its end, and every second opens and closes with a
trade exactly at those two prices.

Consequences: the market is the same whenever and however often it is generated (a restarted
daemon continues the same market, `qkt fetch` of overlapping ranges agrees); any candle's open is
the price at its start and its close the price at its end, so one candle closes where the next one
opens, in history and live alike; and a past candle can be drawn without its trades (`SimHistory`):
its open and close are exact, its high, low and volume are drawn for the candle.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from qkt.market.models import Candle, CandleKey
from qkt.market.profiles import Profile, profile_for

_SIGMA_S: Final = 0.0001  # spread of log price over one second (~0.08% per minute)
_WAVES: Final = 24  # sine waves per symbol, periods spaced geometrically
_PERIODS_S: Final = (120.0, 60 * 86_400.0)
# Swings of (amplitude, period range): 15-30 minutes (EMA crossovers), 40-90 minutes (runs long
# enough for RSI extremes).
_SWINGS: Final = ((0.005, (900.0, 1_800.0)), (0.006, (2_400.0, 5_400.0)))
_TRADES_PER_S: Final = 10
# Roughness the smooth waves lack: value noise on lattices of (seconds, amplitude).
_GRAINS: Final = ((10, 0.0002), (60, 0.0003), (300, 0.0006))
_MASK: Final = (1 << 64) - 1

Trade = tuple[int, Decimal, Decimal]  # (ts_ms, price, size)


def _mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): seeds that differ in any input differ."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (value & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & _MASK
        state ^= state >> 29
    return state


def _name_hash(text: str) -> int:
    return _mix(*text.encode())


@dataclass(frozen=True, slots=True)
class _Wave:
    amplitude: float
    omega: float  # radians per second
    phase: float


class PricePath:
    """One symbol's price at any market time, and its trades second by second."""

    def __init__(self, seed: int, symbol: str) -> None:
        self.symbol = symbol
        self.profile: Profile = profile_for(symbol)
        self._base = _mix(seed, _name_hash(symbol.upper()))
        rng = random.Random(self._base)
        low, high = (math.log(p) for p in _PERIODS_S)
        waves = []
        for i in range(_WAVES):
            period = math.exp(low + (high - low) * (i + rng.random()) / _WAVES)
            amplitude = 0.15 * _SIGMA_S * math.sqrt(period) * rng.uniform(0.5, 1.5)
            waves.append(_Wave(amplitude, 2 * math.pi / period, rng.uniform(0, 2 * math.pi)))
        for amplitude, periods in _SWINGS:
            period = rng.uniform(*periods)
            waves.append(_Wave(amplitude, 2 * math.pi / period, rng.uniform(0, 2 * math.pi)))
        self._waves = tuple(waves)
        self._log_base = math.log(self.profile.price)
        self._tick = self.profile.tick
        self._tick_f = float(self.profile.tick)

    def log_price(self, t_s: float) -> float:
        """Natural log of the (unrounded) price at market second `t_s`."""
        total = self._log_base
        for wave in self._waves:
            total += wave.amplitude * math.sin(wave.omega * t_s + wave.phase)
        for salt, (spacing, amplitude) in enumerate(_GRAINS):
            cell, frac = divmod(t_s / spacing, 1.0)
            n = int(cell)
            ease = frac * frac * (3 - 2 * frac)
            left, right = self._grain(salt, n), self._grain(salt, n + 1)
            total += amplitude * (left + (right - left) * ease)
        return total

    def _grain(self, salt: int, n: int) -> float:
        """A deterministic value of spread ~1 for lattice point `n` (two uniforms: triangular)."""
        bits = _mix(self._base, salt, n)
        return ((bits & 0xFFFFFFFF) + (bits >> 32)) / 2**32 - 1.0

    def price(self, ms: int) -> Decimal:
        """The price on the symbol's tick at the start of the second containing `ms`."""
        return self._on_tick(self.log_price(ms // 1000))

    def _on_tick(self, log_price: float) -> Decimal:
        return max(1, round(math.exp(log_price) / self._tick_f)) * self._tick

    def second(self, second: int) -> list[Trade]:
        """The trades of market second `second`, oldest first (the same every time)."""
        rng = random.Random(_mix(self._base, second))
        start, end = self.log_price(second), self.log_price(second + 1)
        count = rng.randint(_TRADES_PER_S // 2, _TRADES_PER_S * 3 // 2)
        offsets = sorted(rng.randrange(1, 999) for _ in range(count - 2))
        base_ms = second * 1000
        lot = self.profile.lot
        trades = [(base_ms, self._on_tick(start), self._size(rng, lot))]
        wander = 0.0  # a Brownian bridge: free in the middle, pinned to 0 at both ends
        last = 0
        for offset in offsets:
            step = (offset - last) / 1000
            last = offset
            wander += rng.gauss(0.0, _SIGMA_S * math.sqrt(step))
            pinned = wander * (1000 - offset) / 1000
            level = start + (end - start) * offset / 1000 + pinned
            trades.append((base_ms + offset, self._on_tick(level), self._size(rng, lot)))
        trades.append((base_ms + 999, self._on_tick(end), self._size(rng, lot)))
        return trades

    @staticmethod
    def _size(rng: random.Random, lot: Decimal) -> Decimal:
        return (1 + int(rng.expovariate(0.2))) * lot

    def candle(self, key: CandleKey, open_ms: int) -> Candle:
        """The candle of `key` opening at `open_ms`, drawn without its trades.

        Open and close are exact (the first and last trade of the bucket are at the path's price
        at its start and end); high, low and volume are drawn for the candle.
        """
        return self.candles(key, [open_ms])[0]

    def candles(self, key: CandleKey, opens: Sequence[int]) -> list[Candle]:
        """`candle(key, t)` for each t, sharing the price at each boundary between neighbours."""
        length_s = key.timeframe.ms / 1000
        wick = _SIGMA_S * math.sqrt(max(length_s, 1.0)) * 0.3
        base_lots = length_s * _TRADES_PER_S * 5.5
        lot = self.profile.lot
        out: list[Candle] = []
        level_at: dict[int, float] = {}
        for open_ms in opens:
            first_s = open_ms // 1000
            end_s = (open_ms + key.timeframe.ms) // 1000
            start = level_at.pop(first_s, None)
            if start is None:
                start = self.log_price(first_s)
            end = level_at[end_s] = self.log_price(end_s)
            middle = self.log_price(first_s + length_s / 2)
            bits = _mix(self._base, key.timeframe.ms, open_ms)
            up, down, size = (((bits >> shift) & 0x1FFFFF) / 0x1FFFFF for shift in (0, 21, 42))
            opened, closed = self._on_tick(start), self._on_tick(end)
            # An exponential wick (mean `wick`) beyond the path's highest / lowest point seen.
            high = max(opened, closed, self._on_tick(max(start, middle, end) - wick * _ln(up)))
            low = min(opened, closed, self._on_tick(min(start, middle, end) + wick * _ln(down)))
            lots = max(1, round(base_lots * (0.7 + 0.6 * size)))
            out.append(Candle(key, open_ms, opened, high, low, closed, lots * lot))
        return out


def _ln(unit: float) -> float:
    """log of a uniform in (0, 1] (0 mapped to the smallest step): an exponential draw."""
    return math.log(max(unit, 1e-9))
