"""Range and trend indicators on candles: ATR, NATR, TRANGE, the directional movement family
(PLUS/MINUS_DM, PLUS/MINUS_DI, DX, ADX, ADXR), AROON, AROONOSC, SAR and SUPERTREND."""

from __future__ import annotations

from collections import deque

from qkt.engine.indicators.base import Bar, Extreme, Indicator


def true_range(high: float, low: float, prev_close: float) -> float:
    return max(high - low, abs(prev_close - high), abs(low - prev_close))


class Atr(Indicator):
    """Average true range: mean of the first n true ranges, then Wilder smoothing."""

    kind = "candle"

    def __init__(self, period: int) -> None:
        super().__init__()
        if period < 1:
            raise ValueError(f"an indicator period must be at least 1, got {period}")
        self.period = period
        self._prev_close: float | None = None
        self._count = 0
        self._sum = 0.0

    def update_candle(self, bar: Bar) -> None:
        self.update_bar(bar.high, bar.low, bar.close)

    def update_bar(self, high: float, low: float, close: float) -> None:
        """Feed the next candle's high, low and close."""
        prev_close, self._prev_close = self._prev_close, close
        if prev_close is None:
            return  # the first candle has no true range: it needs a previous close
        tr = true_range(high, low, prev_close)
        n = self.period
        if self.value is not None:
            value = self.value * (n - 1)
            value += tr
            self.value = value / n
            return
        self._count += 1
        self._sum += tr
        if self._count == n:
            self.value = self._sum / n


class Natr(Atr):
    """ATR / close · 100 (0 at a close of 0)."""

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self.atr: float | None = None

    def update_candle(self, bar: Bar) -> None:
        self.value = self.atr
        self.update_bar(bar.high, bar.low, bar.close)
        self.atr = self.value
        if self.atr is not None:
            self.value = (self.atr / bar.close) * 100.0 if bar.close != 0.0 else 0.0


class Trange(Indicator):
    """True range: the candle's range widened to the previous close."""

    kind = "candle"

    def __init__(self) -> None:
        super().__init__()
        self._prev_close: float | None = None

    def update_candle(self, bar: Bar) -> None:
        prev, self._prev_close = self._prev_close, bar.close
        if prev is not None:
            self.value = true_range(bar.high, bar.low, prev)


class Directional(Indicator):
    """Wilder's directional movement: `form` is PLUS_DM, MINUS_DM, PLUS_DI, MINUS_DI, DX, ADX
    or ADXR. Sums of the first n − 1 moves, then `x − x/n + move` smoothing, as TA-Lib."""

    kind = "candle"

    def __init__(self, period: int, form: str) -> None:
        super().__init__()
        self.period = period
        self._form = form
        self._prev: list[float] | None = None
        self._moves = 0
        self._plus = self._minus = self._range = 0.0
        self._sum_dx = 0.0
        self._adx: float | None = None
        self._history: deque[float] = deque(maxlen=period)  # ADXR: the last n ADX values

    def update_candle(self, bar: Bar) -> None:
        if self._prev is None:
            self._prev = [bar.high, bar.low, bar.close]
            return
        prev_high, prev_low, prev_close = self._prev
        self._prev = [bar.high, bar.low, bar.close]
        diff_plus, diff_minus = bar.high - prev_high, prev_low - bar.low
        plus = diff_plus if diff_plus > 0 and diff_plus > diff_minus else 0.0
        minus = diff_minus if diff_minus > 0 and diff_plus < diff_minus else 0.0
        tr = true_range(bar.high, bar.low, prev_close)
        n = self.period
        self._moves += 1
        if self._moves < n:
            self._plus += plus
            self._minus += minus
            self._range += tr
            if self._moves == n - 1 and self._form in ("PLUS_DM", "MINUS_DM"):
                self.value = self._plus if self._form == "PLUS_DM" else self._minus
            return
        self._plus = self._plus - (self._plus / n) + plus
        self._minus = self._minus - (self._minus / n) + minus
        self._range = self._range - (self._range / n) + tr
        self._output()

    def _dx(self) -> float | None:
        if self._range == 0.0:
            return None
        minus_di = 100.0 * (self._minus / self._range)
        plus_di = 100.0 * (self._plus / self._range)
        total = minus_di + plus_di
        return 100.0 * (abs(minus_di - plus_di) / total) if total != 0.0 else None

    def _output(self) -> None:
        form, n = self._form, self.period
        if form in ("PLUS_DM", "MINUS_DM"):
            self.value = self._plus if form == "PLUS_DM" else self._minus
        elif form in ("PLUS_DI", "MINUS_DI"):
            dm = self._plus if form == "PLUS_DI" else self._minus
            self.value = 100.0 * (dm / self._range) if self._range != 0.0 else 0.0
        elif form == "DX":
            dx = self._dx()
            self.value = dx if dx is not None else (self.value or 0.0)
        elif self._moves < 2 * n - 1:  # ADX, ADXR: the first n DX are averaged
            self._sum_dx += self._dx() or 0.0
        elif self._moves == 2 * n - 1:
            self._sum_dx += self._dx() or 0.0
            self._adx = self._sum_dx / n
        elif self._adx is not None and (dx := self._dx()) is not None:
            self._adx = ((self._adx * (n - 1)) + dx) / n
        if form in ("ADX", "ADXR") and self._adx is not None:
            self._history.append(self._adx)
            if form == "ADX":
                self.value = self._adx
            elif len(self._history) == n:
                self.value = (self._adx + self._history[0]) / 2.0


class Aroon(Indicator):
    """Candles since the highest high / lowest low of the last n + 1, scaled to 0..100 (the
    newest wins a tie); with `oscillator`, up − down as TA-Lib's AROONOSC."""

    outputs = ("down", "up")
    kind = "candle"

    def __init__(self, period: int, oscillator: bool = False) -> None:
        super().__init__()
        self.period = period
        self._high, self._low = Extreme(period + 1, True), Extreme(period + 1, False)
        self._oscillator = oscillator
        self.down: float | None = None
        self.up: float | None = None

    def update_candle(self, bar: Bar) -> None:
        self._high.push(bar.high)
        self._low.push(bar.low)
        if not self._high.full:
            return
        n = self.period
        factor = 100.0 / n
        if self._oscillator:
            self.value = factor * (self._low.age - self._high.age)
            return
        self.down = factor * (n - self._low.age)
        self.up = factor * (n - self._high.age)
        self.value = self.down


class Sar(Indicator):
    """Wilder's parabolic SAR, TA-Lib's algorithm: the first direction from the second candle's
    −DM, the stop kept outside the last two candles' range."""

    kind = "candle"

    def __init__(self, acceleration: float, maximum: float) -> None:
        super().__init__()
        self._step = min(acceleration, maximum)  # TA-Lib caps the step at the maximum
        self._maximum = maximum
        self._af = self._step
        self._first: list[float] | None = None
        self._long = True
        self._ep = self._sar = 0.0
        self._new_high = self._new_low = 0.0

    def update_candle(self, bar: Bar) -> None:
        high, low = bar.high, bar.low
        if self._first is None:
            self._first = [high, low]
            return
        if self.value is None:  # the second candle: direction and starting stop
            first_high, first_low = self._first
            diff_plus, diff_minus = high - first_high, first_low - low
            self._long = not (diff_minus > 0 and diff_plus < diff_minus)
            self._ep, self._sar = (high, first_low) if self._long else (low, first_high)
            self._new_high, self._new_low = high, low
        prev_high, prev_low = self._new_high, self._new_low
        self._new_high, self._new_low = high, low
        if self._long:
            self._step_long(prev_high, prev_low, high, low)
        else:
            self._step_short(prev_high, prev_low, high, low)

    def _step_long(self, prev_high: float, prev_low: float, high: float, low: float) -> None:
        if low <= self._sar:  # reverse to short
            self._long = False
            sar = max(self._ep, prev_high, high)
            self.value = sar
            self._af, self._ep = self._step, low
            self._sar = max(sar + self._af * (self._ep - sar), prev_high, high)
            return
        self.value = self._sar
        if high > self._ep:
            self._ep = high
            self._af = min(self._af + self._step, self._maximum)
        self._sar = min(self._sar + self._af * (self._ep - self._sar), prev_low, low)

    def _step_short(self, prev_high: float, prev_low: float, high: float, low: float) -> None:
        if high >= self._sar:  # reverse to long
            self._long = True
            sar = min(self._ep, prev_low, low)
            self.value = sar
            self._af, self._ep = self._step, high
            self._sar = min(sar + self._af * (self._ep - sar), prev_low, low)
            return
        self.value = self._sar
        if low < self._ep:
            self._ep = low
            self._af = min(self._af + self._step, self._maximum)
        self._sar = max(self._sar + self._af * (self._ep - self._sar), prev_high, high)


class Supertrend(Indicator):
    """hl2 ∓ mult·ATR(n) bands that only tighten while the close stays inside; the direction
    turns down (−1) when the close falls below the lower band, up (1) above the upper; the value
    is the lower band going up, the upper band going down. Starts up."""

    outputs = ("value", "direction")
    kind = "candle"

    def __init__(self, period: int, mult: float) -> None:
        super().__init__()
        self._atr = Atr(period)
        self._mult = mult
        self._upper = self._lower = 0.0
        self._close = 0.0
        self.direction: float | None = None

    def update_candle(self, bar: Bar) -> None:
        self._atr.update_bar(bar.high, bar.low, bar.close)
        if (atr := self._atr.value) is None:
            self._close = bar.close
            return
        middle = (bar.high + bar.low) / 2.0
        upper, lower = middle + self._mult * atr, middle - self._mult * atr
        if self.direction is not None:
            if not (upper < self._upper or self._close > self._upper):
                upper = self._upper
            if not (lower > self._lower or self._close < self._lower):
                lower = self._lower
        direction = self.direction or 1.0
        if direction > 0 and bar.close < lower:
            direction = -1.0
        elif direction < 0 and bar.close > upper:
            direction = 1.0
        self._upper, self._lower, self._close = upper, lower, bar.close
        self.direction = direction
        self.value = lower if direction > 0 else upper
