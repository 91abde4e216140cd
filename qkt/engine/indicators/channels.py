"""Highest, lowest and channels: HIGHEST, LOWEST, MIDPOINT, MIDPRICE, DONCHIAN and KELTNER."""

from __future__ import annotations

from qkt.engine.indicators.averages import Ema
from qkt.engine.indicators.base import Bar, Extreme, Indicator
from qkt.engine.indicators.trend import Atr


class Window(Indicator):
    """HIGHEST, LOWEST, MIDPOINT of a series over n."""

    def __init__(self, period: int, form: str) -> None:
        super().__init__()
        self._high, self._low = Extreme(period, True), Extreme(period, False)
        self._form = form

    def update(self, x: float) -> None:
        self._high.push(x)
        self._low.push(x)
        if not self._high.full:
            return
        high, low = self._high.best, self._low.best
        self.value = (
            high
            if self._form == "HIGHEST"
            else low
            if self._form == "LOWEST"
            else ((high + low) / 2.0)
        )


class Channel(Indicator):
    """MIDPRICE ((highest high + lowest low) / 2) and DONCHIAN (upper, middle, lower)."""

    outputs = ("upper", "middle", "lower")
    kind = "candle"

    def __init__(self, period: int) -> None:
        super().__init__()
        self._high, self._low = Extreme(period, True), Extreme(period, False)
        self.upper: float | None = None
        self.middle: float | None = None
        self.lower: float | None = None

    def update_candle(self, bar: Bar) -> None:
        self._high.push(bar.high)
        self._low.push(bar.low)
        if self._high.full:
            self.upper, self.lower = self._high.best, self._low.best
            self.middle = self.value = (self.upper + self.lower) / 2.0


class Keltner(Indicator):
    """EMA(close, n) ± mult · ATR(n)."""

    outputs = ("upper", "middle", "lower")
    kind = "candle"

    def __init__(self, period: int, mult: float) -> None:
        super().__init__()
        self._ema, self._atr = Ema(period), Atr(period)
        self._mult = mult
        self.upper: float | None = None
        self.middle: float | None = None
        self.lower: float | None = None

    def update_candle(self, bar: Bar) -> None:
        self._ema.update(bar.close)
        self._atr.update_bar(bar.high, bar.low, bar.close)
        middle, atr = self._ema.value, self._atr.value
        if middle is not None and atr is not None:
            self.middle = self.value = middle
            self.upper = middle + self._mult * atr
            self.lower = middle - self._mult * atr
