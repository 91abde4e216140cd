"""Incremental indicators (O(1) per value), exactly TA-Lib's definitions (dsl.md's table).

Each class mirrors the order of floating-point operations in TA-Lib's C code (ta_SMA.c,
ta_EMA.c, ta_RSI.c, ta_ATR.c with the default "unstable period" of 0), so that values agree to
far better than the 1e-9 relative the language promises. `value` is None until warm:
SMA and EMA after n values, RSI after n + 1 values (n changes), ATR after n + 1 candles.

One deliberate difference: when RSI's average gain and loss are both exactly 0 (nothing moved in
the whole seeding window) RSI is 50 as dsl.md says, where TA-Lib prints 0; and TA-Lib also prints
0 whenever gain + loss < 1e-8 (its TA_IS_ZERO), which for assets priced below ~1e-6 is most of the
time. We always compute 100 * G / (G + L), the exact form of 100 - 100 / (1 + G / L).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from typing import Any, Final

NAMES: Final = ("SMA", "EMA", "RSI", "ATR")


class Indicator(ABC):
    """One incremental indicator instance; `value` is None until it is warm."""

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"an indicator period must be at least 1, got {period}")
        self.period = period
        self.value: float | None = None

    @abstractmethod
    def export(self) -> dict[str, Any]:
        """Internal state as JSON-able data (floats round-trip exactly)."""

    @abstractmethod
    def restore(self, data: dict[str, Any]) -> None:
        """Load what `export` returned."""


class Sma(Indicator):
    """Mean of the last n values (a running sum, as TA-Lib keeps it)."""

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._window: deque[float] = deque()
        self._total = 0.0

    def update(self, x: float) -> None:
        """Feed the next value."""
        self._window.append(x)
        self._total += x
        if len(self._window) == self.period:
            self.value = self._total / self.period
            self._total -= self._window.popleft()

    def export(self) -> dict[str, Any]:
        return {"window": list(self._window), "total": self._total, "value": self.value}

    def restore(self, data: dict[str, Any]) -> None:
        self._window = deque(data["window"])
        self._total = data["total"]
        self.value = data["value"]


class Ema(Indicator):
    """Seeded with the mean of the first n values, then `prev + k * (x - prev)`, k = 2/(n+1)."""

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._k = 2.0 / (period + 1)
        self._count = 0
        self._sum = 0.0

    def update(self, x: float) -> None:
        """Feed the next value."""
        if self.value is not None:
            self.value = ((x - self.value) * self._k) + self.value
            return
        self._count += 1
        self._sum += x
        if self._count == self.period:
            self.value = self._sum / self.period

    def export(self) -> dict[str, Any]:
        return {"count": self._count, "sum": self._sum, "value": self.value}

    def restore(self, data: dict[str, Any]) -> None:
        self._count = data["count"]
        self._sum = data["sum"]
        self.value = data["value"]


def _rsi(gain: float, loss: float) -> float:
    if loss == 0.0:
        return 100.0 if gain > 0.0 else 50.0
    return 100.0 * (gain / (gain + loss))


class Rsi(Indicator):
    """Wilder's RSI: averages seeded with the mean of the first n changes, then Wilder smoothing."""

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._prev: float | None = None
        self._changes = 0
        self._gain = 0.0
        self._loss = 0.0

    def update(self, x: float) -> None:
        """Feed the next value."""
        prev, self._prev = self._prev, x
        if prev is None:
            return
        change = x - prev
        n = self.period
        if self._changes < n:
            self._changes += 1
            if change < 0:
                self._loss -= change
            else:
                self._gain += change
            if self._changes == n:
                self._loss /= n
                self._gain /= n
                self.value = _rsi(self._gain, self._loss)
            return
        self._loss *= n - 1
        self._gain *= n - 1
        if change < 0:
            self._loss -= change
        else:
            self._gain += change
        self._loss /= n
        self._gain /= n
        self.value = _rsi(self._gain, self._loss)

    def export(self) -> dict[str, Any]:
        return {
            "prev": self._prev,
            "changes": self._changes,
            "gain": self._gain,
            "loss": self._loss,
            "value": self.value,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self._prev = data["prev"]
        self._changes = data["changes"]
        self._gain = data["gain"]
        self._loss = data["loss"]
        self.value = data["value"]


class Atr(Indicator):
    """Average true range: mean of the first n true ranges, then Wilder smoothing."""

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._prev_close: float | None = None
        self._count = 0
        self._sum = 0.0

    def update_bar(self, high: float, low: float, close: float) -> None:
        """Feed the next candle."""
        prev_close, self._prev_close = self._prev_close, close
        if prev_close is None:
            return  # the first candle has no true range: it needs a previous close
        true_range = high - low
        true_range = max(true_range, abs(prev_close - high), abs(low - prev_close))
        n = self.period
        if self.value is not None:
            value = self.value * (n - 1)
            value += true_range
            self.value = value / n
            return
        self._count += 1
        self._sum += true_range
        if self._count == n:
            self.value = self._sum / n

    def export(self) -> dict[str, Any]:
        return {
            "prev_close": self._prev_close,
            "count": self._count,
            "sum": self._sum,
            "value": self.value,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self._prev_close = data["prev_close"]
        self._count = data["count"]
        self._sum = data["sum"]
        self.value = data["value"]


_BY_NAME: Final[dict[str, type[Sma] | type[Ema] | type[Rsi] | type[Atr]]] = {
    "SMA": Sma,
    "EMA": Ema,
    "RSI": Rsi,
    "ATR": Atr,
}


def make_indicator(name: str, period: int) -> Sma | Ema | Rsi | Atr:
    """A fresh instance of the indicator called `name` (one of `NAMES`)."""
    try:
        cls = _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown indicator {name!r}; known: {', '.join(NAMES)}") from None
    return cls(period)
