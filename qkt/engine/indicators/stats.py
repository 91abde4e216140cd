"""Statistics over a window: BBANDS, STDDEV, VAR, CORREL, BETA and the LINEARREG family.

A window whose values are all equal has a
deviation of exactly 0 here (TA-Lib gets there by zeroing anything below 1e-8, which also zeroes
real, small deviations of assets priced under a cent); CORREL and BETA are 0 when one series is
flat over the window, where TA-Lib's output is rounding noise.
"""

from __future__ import annotations

import math
from collections import deque

from qkt.engine.indicators.averages import make_ma
from qkt.engine.indicators.base import Constancy, Indicator


class Variance(Indicator):
    """Population variance over n, from sums of deviations from a shift near the mean: O(1) a
    value, re-centred exactly every n values, so no cancellation or drift builds up (TA-Lib 0.8
    is accurate to the last bits; the textbook Σx²/n − mean² is not)."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = period
        self._window: deque[float] = deque(maxlen=period)
        self._shift = 0.0
        self._s1 = self._s2 = 0.0
        self._slides = 0
        self._constancy = Constancy(period)

    def update(self, x: float) -> None:
        n, window = self.period, self._window
        self._constancy.push(x)
        if len(window) == n and self._slides < n:
            old = window[0]
            window.append(x)
            dx, dold = x - self._shift, old - self._shift
            self._s1 += dx - dold
            self._s2 += dx * dx - dold * dold
            self._slides += 1
        else:
            window.append(x)
            if len(window) < n:
                return
            self._recentre()
        if self._constancy.flat:
            self.value = 0.0
            return
        mean = self._s1 / n
        self.value = max(0.0, self._s2 / n - mean * mean)

    def _recentre(self) -> None:
        self._shift = sum(self._window) / self.period
        self._s1 = self._s2 = 0.0
        for value in self._window:
            d = value - self._shift
            self._s1 += d
            self._s2 += d * d
        self._slides = 0


class Stddev(Indicator):
    """√VAR · nbdev (TA-Lib's VAR itself ignores nbdev)."""

    def __init__(self, period: int, nbdev: float, variance: bool = False) -> None:
        super().__init__()
        self._var = Variance(period)
        self._nbdev = nbdev
        self._variance = variance

    def update(self, x: float) -> None:
        self._var.update(x)
        if (var := self._var.value) is not None:
            self.value = var if self._variance else math.sqrt(var) * self._nbdev


class Bbands(Indicator):
    """MA(n) ± nbdev · population standard deviation of the window."""

    outputs = ("upper", "middle", "lower")

    def __init__(self, period: int, up: float, down: float, matype: str) -> None:
        super().__init__()
        self._ma = make_ma(matype, period)
        self._sd = Stddev(period, 1.0) if period > 1 else None
        self._up, self._down = up, down
        self.upper: float | None = None
        self.middle: float | None = None
        self.lower: float | None = None

    def update(self, x: float) -> None:
        self._ma.update(x)
        sd = 0.0
        if self._sd is not None:
            self._sd.update(x)
            sd = self._sd.value if self._sd.value is not None else math.nan
        middle = self._ma.value
        if middle is None or math.isnan(sd):
            return
        self.middle = self.value = middle
        self.upper = middle + sd * self._up
        self.lower = middle - sd * self._down


class Correl(Indicator):
    """Pearson's r over n pairs, from sums of deviations from shifts re-centred every n pairs
    (as `Variance`); 0 when either series is flat over the window."""

    kind = "two series"

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = period
        self._pairs: deque[list[float]] = deque(maxlen=period)
        self._shift = [0.0, 0.0]
        self._sums = [0.0] * 5  # Σdx, Σdy, Σdx², Σdy², Σdx·dy
        self._slides = 0
        self._flat_x, self._flat_y = Constancy(period), Constancy(period)

    def _add(self, x: float, y: float, sign: float) -> None:
        dx, dy = x - self._shift[0], y - self._shift[1]
        sums = self._sums
        sums[0] += sign * dx
        sums[1] += sign * dy
        sums[2] += sign * (dx * dx)
        sums[3] += sign * (dy * dy)
        sums[4] += sign * (dx * dy)

    def update_pair(self, x: float, y: float) -> None:
        n, pairs = self.period, self._pairs
        self._flat_x.push(x)
        self._flat_y.push(y)
        if len(pairs) == n and self._slides < n:
            ox, oy = pairs[0]
            pairs.append([x, y])
            self._add(x, y, 1.0)
            self._add(ox, oy, -1.0)
            self._slides += 1
        else:
            pairs.append([x, y])
            if len(pairs) < n:
                return
            self._shift = [sum(p[0] for p in pairs) / n, sum(p[1] for p in pairs) / n]
            self._sums = [0.0] * 5
            for px, py in pairs:
                self._add(px, py, 1.0)
            self._slides = 0
        if self._flat_x.flat or self._flat_y.flat:
            self.value = 0.0
            return
        sx, sy, sxx, syy, sxy = self._sums
        spread = (sxx - sx * sx / n) * (syy - sy * sy / n)
        self.value = (sxy - sx * sy / n) / math.sqrt(spread) if spread > 0.0 else 0.0


class Beta(Indicator):
    """Beta of y's returns on x's over n returns (a return from a price of 0 counts as 0)."""

    kind = "two series"

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = period
        self._last: list[float] | None = None
        self._returns: deque[list[float]] = deque()
        self._moving = 0  # how many x returns in the window are not 0
        self._sxx = self._sx = self._sxy = self._sy = 0.0

    def update_pair(self, x: float, y: float) -> None:
        last, self._last = self._last, [x, y]
        if last is None:
            return
        rx = (x - last[0]) / last[0] if last[0] != 0.0 else 0.0
        ry = (y - last[1]) / last[1] if last[1] != 0.0 else 0.0
        self._returns.append([rx, ry])
        self._moving += rx != 0.0
        self._sxx += rx * rx
        self._sx += rx
        self._sxy += rx * ry
        self._sy += ry
        if len(self._returns) < self.period:
            return
        n = float(self.period)
        spread = (n * self._sxx) - (self._sx * self._sx)
        if self._moving and spread != 0.0:
            self.value = ((n * self._sxy) - (self._sx * self._sy)) / spread
        else:
            self.value = 0.0
        ox, oy = self._returns.popleft()
        self._moving -= ox != 0.0
        self._sxx -= ox * ox
        self._sxy -= ox * oy
        self._sx -= ox
        self._sy -= oy


class LinearReg(Indicator):
    """Least squares over the last n values; `form` LINEARREG (the line's newest point),
    LINEARREG_SLOPE, LINEARREG_INTERCEPT (its oldest point) or TSF (one step ahead).
    Sums slide in O(1) and are recomputed exactly every n values, so no drift builds up."""

    def __init__(self, period: int, form: str) -> None:
        super().__init__()
        self.period = period
        self._form = form
        self._window: deque[float] = deque(maxlen=period)
        self._sum_y = self._sum_dy = 0.0  # Σy and Σ(candles back)·y
        self._slides = 0

    def update(self, x: float) -> None:
        n, window = self.period, self._window
        if len(window) == n and self._slides < n:
            old = window[0]
            self._sum_dy = self._sum_dy - (n - 1) * old + (self._sum_y - old)
            self._sum_y = self._sum_y - old + x
            self._slides += 1
            window.append(x)
        else:
            window.append(x)
            if len(window) < n:
                return
            self._slides = 0
            self._sum_y = self._sum_dy = 0.0
            for back in range(n - 1, -1, -1):
                y = window[n - 1 - back]
                self._sum_y += y
                self._sum_dy += back * y
        sum_x = n * (n - 1) * 0.5
        divisor = sum_x * sum_x - n * (n * (n - 1) * (2 * n - 1) // 6)
        slope = (n * self._sum_dy - sum_x * self._sum_y) / divisor
        intercept = (self._sum_y - slope * sum_x) / n
        self.value = {
            "LINEARREG": intercept + slope * (n - 1),
            "LINEARREG_SLOPE": slope,
            "LINEARREG_INTERCEPT": intercept,
            "TSF": intercept + slope * n,
        }[self._form]
