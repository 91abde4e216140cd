"""Moving averages, each exactly TA-Lib's (same seeding, same order of float operations where
it matters), and `make_ma` for the indicators that take a `MATYPE`."""

from __future__ import annotations

import math
from collections import deque

from qkt.engine.indicators.base import Indicator


def _check(period: int, lowest: int = 1) -> int:
    if period < lowest:
        raise ValueError(f"an indicator period must be at least {lowest}, got {period}")
    return period


class Identity(Indicator):
    """A moving average over 1 value: TA-Lib copies the input."""

    def update(self, x: float) -> None:
        self.value = x


class Sma(Indicator):
    """Mean of the last n values (a running sum, as TA-Lib keeps it)."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = _check(period)
        self._window: deque[float] = deque()
        self._total = 0.0

    def update(self, x: float) -> None:
        self._window.append(x)
        self._total += x
        if len(self._window) == self.period:
            self.value = self._total / self.period
            self._total -= self._window.popleft()


class Ema(Indicator):
    """Seeded with the mean of the first n values, then `prev + k * (x - prev)`, k = 2/(n+1)."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = _check(period)
        self._k = 2.0 / (period + 1)
        self._count = 0
        self._sum = 0.0

    def update(self, x: float) -> None:
        if self.value is not None:
            self.value = ((x - self.value) * self._k) + self.value
            return
        self._count += 1
        self._sum += x
        if self._count == self.period:
            self.value = self._sum / self.period


class Wma(Indicator):
    """Weights 1..n (newest heaviest), kept as TA-Lib's running `periodSum`/`periodSub`."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = _check(period)
        self._window: deque[float] = deque(maxlen=period)
        self._sub = 0.0
        self._sum = 0.0
        self._trailing = 0.0

    def update(self, x: float) -> None:
        n = self.period
        self._window.append(x)
        if self.value is None and len(self._window) < n:
            self._sub += x
            self._sum += x * len(self._window)
            return
        self._sub += x
        self._sub -= self._trailing
        self._sum += x * n
        self._trailing = self._window[0]
        self.value = self._sum / ((n * (n + 1)) >> 1)
        self._sum -= self._sub


class Dema(Indicator):
    """2·EMA − EMA(EMA)."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self._e1, self._e2 = Ema(period), Ema(period)

    def update(self, x: float) -> None:
        self._e1.update(x)
        if self._e1.value is not None:
            self._e2.update(self._e1.value)
            if self._e2.value is not None:
                self.value = (2.0 * self._e1.value) - self._e2.value


class Tema(Indicator):
    """3·(EMA − EMA(EMA)) + EMA(EMA(EMA))."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self._e1, self._e2, self._e3 = Ema(period), Ema(period), Ema(period)

    def update(self, x: float) -> None:
        self._e1.update(x)
        if (e1 := self._e1.value) is None:
            return
        self._e2.update(e1)
        if (e2 := self._e2.value) is None:
            return
        self._e3.update(e2)
        if (e3 := self._e3.value) is not None:
            self.value = (3.0 * (e1 - e2)) + e3


class Trima(Indicator):
    """Triangular: SMA of an SMA ((n+1)/2 twice when n is odd, n/2 + 1 of n/2 when even)."""

    def __init__(self, period: int) -> None:
        super().__init__()
        half = (period + 1) // 2 if period % 2 else period // 2
        self._inner = Sma(half)
        self._outer = Sma(half if period % 2 else half + 1)

    def update(self, x: float) -> None:
        self._inner.update(x)
        if self._inner.value is not None:
            self._outer.update(self._inner.value)
            self.value = self._outer.value


class Kama(Indicator):
    """Kaufman: efficiency ratio over n changes scales the factor between 2/3 and 2/31."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = _check(period)
        self._window: deque[float] = deque(maxlen=period + 1)
        self._sum_roc1 = 0.0

    def update(self, x: float) -> None:
        window = self._window
        n = self.period
        if len(window) == n + 1:  # steady state: slide the sum of |changes| by one
            trailing_prev, trailing = window[0], window[1]
            self._sum_roc1 -= abs(trailing_prev - trailing)
            self._sum_roc1 += abs(x - window[-1])
        elif window:
            self._sum_roc1 += abs(window[-1] - x)
        window.append(x)
        if len(window) < n + 1:
            return
        prev = self.value if self.value is not None else window[-2]
        period_roc = x - window[0]
        if self._sum_roc1 <= period_roc or self._sum_roc1 == 0.0:
            ratio = 1.0
        else:
            ratio = abs(period_roc / self._sum_roc1)
        fastest, slowest = 2.0 / 3.0, 2.0 / 31.0
        factor = (ratio * (fastest - slowest)) + slowest
        factor *= factor
        self.value = ((x - prev) * factor) + prev


class T3(Indicator):
    """Tillson: six chained EMAs (each seeded with the mean of its first n inputs)."""

    def __init__(self, period: int, vfactor: float = 0.7) -> None:
        super().__init__()
        self.period = _check(period)
        self._k = 2.0 / (period + 1.0)
        self._stages: list[float | None] = [None] * 6
        self._sums = [0.0] * 6
        self._counts = [0] * 6
        squared = vfactor * vfactor
        c1 = -squared * vfactor
        self._c = (
            c1,
            3.0 * (squared - c1),
            -6.0 * squared - 3.0 * (vfactor - c1),
            1.0 + 3.0 * vfactor - c1 + 3.0 * squared,
        )

    def update(self, x: float) -> None:
        k, n = self._k, self.period
        value: float | None = x
        for i in range(6):
            if value is None:
                return
            stage = self._stages[i]
            if stage is not None:
                stage = (k * value) + ((1.0 - k) * stage)
            else:
                self._counts[i] += 1
                self._sums[i] += value
                if self._counts[i] == n:
                    stage = self._sums[i] / n
            self._stages[i] = value = stage
        e3, e4, e5, e6 = self._stages[2:]
        if e3 is not None and e4 is not None and e5 is not None and e6 is not None:
            c1, c2, c3, c4 = self._c
            self.value = c1 * e6 + c2 * e5 + c3 * e4 + c4 * e3


class Delayed(Indicator):
    """`inner` fed only from the `skip`-th value on: TA-Lib starts a fast average where the
    slow one of the same indicator starts (MACD's fast EMA is seeded at the slow's first value)."""

    def __init__(self, inner: Indicator, skip: int) -> None:
        super().__init__()
        self._inner = inner
        self._skip = skip

    def update(self, x: float) -> None:
        if self._skip > 0:
            self._skip -= 1
            return
        self._inner.update(x)
        self.value = self._inner.value


def make_ma(matype: str, period: int, vfactor: float = 0.7) -> Indicator:
    """TA-Lib's moving average `matype` over `period` (TA_MA)."""
    if period == 1:
        return Identity()
    kinds: dict[str, type[Sma] | type[Ema] | type[Wma] | type[Dema] | type[Tema]] = {
        "SMA": Sma,
        "EMA": Ema,
        "WMA": Wma,
        "DEMA": Dema,
        "TEMA": Tema,
    }
    if matype in kinds:
        return kinds[matype](period)
    if matype == "TRIMA":
        return Trima(period)
    if matype == "KAMA":
        return Kama(period)
    if matype == "T3":
        return T3(period, vfactor)
    raise ValueError(f"unknown MA type {matype!r}")


class Hma(Indicator):
    """Hull: WMA(2·WMA(x, n//2) − WMA(x, n), isqrt(n))."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self._half, self._full = Wma(period // 2), Wma(period)
        self._outer = Wma(max(1, math.isqrt(period)))

    def update(self, x: float) -> None:
        self._half.update(x)
        self._full.update(x)
        if self._half.value is not None and self._full.value is not None:
            self._outer.update(2.0 * self._half.value - self._full.value)
            self.value = self._outer.value
