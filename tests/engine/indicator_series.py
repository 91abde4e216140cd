"""Candle series the indicator tests feed both qkt and TA-Lib: a random walk, a gappy walk with
price jumps, and a walk with long flat stretches (candles that do not move at all)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candles:
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def inputs(self) -> dict[str, np.ndarray]:
        return {
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }


def _candles(rng: np.random.Generator, close: np.ndarray, flat: np.ndarray) -> Candles:
    opens = np.concatenate([[close[0]], close[:-1]])
    wick = rng.uniform(0.0, 1.0, (2, len(close))) * ~flat
    high = np.maximum(opens, close) + wick[0]
    low = np.minimum(opens, close) - wick[1]
    volume = rng.uniform(100.0, 1000.0, len(close))
    return Candles(opens, high, low, close, volume)


def walk(rng: np.random.Generator, n: int) -> Candles:
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    return _candles(rng, close, np.zeros(n, dtype=bool))


def gappy(rng: np.random.Generator, n: int) -> Candles:
    """Jumps of ±5-20 % every 30-60 candles."""
    steps = rng.normal(0.0, 0.5, n)
    at = 0
    while at < n:
        at += int(rng.integers(30, 60))
        if at < n:
            steps[at] += rng.choice([-1.0, 1.0]) * rng.uniform(5.0, 20.0)
    close = 100.0 + np.cumsum(steps)
    return _candles(rng, close, np.zeros(n, dtype=bool))


def flat(rng: np.random.Generator, n: int) -> Candles:
    """Stretches of 5-60 candles with open = high = low = close."""
    steps = rng.normal(0.0, 1.0, n)
    still = np.zeros(n, dtype=bool)
    at = 20
    while at < n:
        length = int(rng.integers(5, 60))
        still[at : at + length] = True
        at += length + int(rng.integers(20, 60))
    steps[still] = 0.0
    close = 100.0 + np.cumsum(steps)
    candles = _candles(rng, close, still)
    opens = candles.open.copy()
    opens[still] = close[still]
    return Candles(
        opens,
        np.where(still, close, candles.high),
        np.where(still, close, candles.low),
        close,
        candles.volume,
    )


SERIES: dict[str, Callable[[np.random.Generator, int], Candles]] = {
    "walk": walk,
    "gappy": gappy,
    "flat": flat,
}
