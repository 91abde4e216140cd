"""Candle indicators reading volume or the typical price: CCI, MFI, ULTOSC, OBV, AD, ADOSC, VWAP."""

from __future__ import annotations

from collections import deque

from qkt.engine.indicators.base import Bar, Indicator

_DAY_MS = 86_400_000
_MONDAY_OFFSET_MS = 4 * _DAY_MS  # 1970-01-01 was a Thursday: Mondays are 4 days off the epoch


class Cci(Indicator):
    """(tp − SMA(tp)) / (0.015 · mean |tp − SMA(tp)|): O(n) a candle, the mean deviation needs
    the whole window. Summed in TA-Lib's circular-buffer order; 0 on a flat window."""

    kind = "candle"

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = period
        self._buffer = [0.0] * period
        self._at = 0
        self._count = 0

    def update_candle(self, bar: Bar) -> None:
        typical = (bar.high + bar.low + bar.close) / 3.0
        self._buffer[self._at] = typical
        self._at = (self._at + 1) % self.period
        self._count += 1
        if self._count < self.period:
            return
        average = 0.0
        for value in self._buffer:
            average += value
        average /= self.period
        deviation = 0.0
        for value in self._buffer:
            deviation += abs(value - average)
        distance = typical - average
        noise = 1e-12 * abs(average)  # a flat window's mean differs from its values by rounding
        if abs(distance) > noise and deviation > noise:
            self.value = distance / (0.015 * (deviation / self.period))
        else:
            self.value = 0.0


class Mfi(Indicator):
    """Money flow index: 100 · positive flow / all flow over n typical-price changes."""

    kind = "candle"

    def __init__(self, period: int) -> None:
        super().__init__()
        self._flows: deque[list[float]] = deque(maxlen=period)
        self._prev: float | None = None
        self._positive = 0.0
        self._negative = 0.0
        self._flowing = 0  # candles of the window whose typical price changed

    def update_candle(self, bar: Bar) -> None:
        typical = (bar.high + bar.low + bar.close) / 3.0
        prev, self._prev = self._prev, typical
        if prev is None:
            return
        if len(self._flows) == self._flows.maxlen:
            positive, negative = self._flows[0]
            self._positive -= positive
            self._negative -= negative
            self._flowing -= positive != 0.0 or negative != 0.0
        change = typical - prev
        flow = typical * bar.volume
        entry = [0.0, 0.0]
        if change < 0:
            entry[1] = flow
            self._negative += flow
        elif change > 0:
            entry[0] = flow
            self._positive += flow
        self._flowing += entry[0] != 0.0 or entry[1] != 0.0
        self._flows.append(entry)
        if not self._flowing:  # nothing moved in the window: clear the sums' rounding residue
            self._positive = self._negative = 0.0
        if len(self._flows) == self._flows.maxlen:
            total = self._positive + self._negative
            self.value = 100.0 * (self._positive / total) if total != 0.0 else 0.0


class Ultosc(Indicator):
    """Ultimate oscillator: buying pressure over true range on three windows, weighted 4:2:1
    from the shortest (TA-Lib sorts the periods)."""

    kind = "candle"

    def __init__(self, first: int, second: int, third: int) -> None:
        super().__init__()
        self._periods = sorted((first, second, third))
        self._terms: deque[list[float]] = deque(maxlen=self._periods[-1])
        self._pressure = [0.0, 0.0, 0.0]
        self._range = [0.0, 0.0, 0.0]
        self._prev_close: float | None = None

    def update_candle(self, bar: Bar) -> None:
        prev, self._prev_close = self._prev_close, bar.close
        if prev is None:
            return
        true_low = min(bar.low, prev)
        true_range = max(bar.high - bar.low, abs(prev - bar.high), abs(prev - bar.low))
        self._terms.append([bar.close - true_low, true_range])
        output = 0.0
        for i, (period, weight) in enumerate(zip(self._periods, (4.0, 2.0, 1.0), strict=True)):
            self._pressure[i] += bar.close - true_low
            self._range[i] += true_range
            if self._range[i] != 0.0:
                output += weight * (self._pressure[i] / self._range[i])
            if len(self._terms) >= period:  # the oldest term leaves before the next candle
                old_pressure, old_range = self._terms[-period]
                self._pressure[i] -= old_pressure
                self._range[i] -= old_range
        if len(self._terms) == self._periods[-1]:
            self.value = 100.0 * (output / 7.0)


class Obv(Indicator):
    """On-balance volume, starting at the first candle's volume (TA-Lib)."""

    kind = "candle"

    def __init__(self) -> None:
        super().__init__()
        self._prev_close: float | None = None

    def update_candle(self, bar: Bar) -> None:
        prev, self._prev_close = self._prev_close, bar.close
        if prev is None or self.value is None:
            self.value = bar.volume
        elif bar.close > prev:
            self.value += bar.volume
        elif bar.close < prev:
            self.value -= bar.volume


def _money_flow_volume(bar: Bar) -> float:
    spread = bar.high - bar.low
    if spread > 0.0:
        return (((bar.close - bar.low) - (bar.high - bar.close)) / spread) * bar.volume
    return 0.0


class Ad(Indicator):
    """Chaikin accumulation/distribution: the running total of money-flow volume."""

    kind = "candle"

    def update_candle(self, bar: Bar) -> None:
        self.value = (self.value or 0.0) + _money_flow_volume(bar)


class Adosc(Indicator):
    """Chaikin oscillator: EMA(fast) − EMA(slow) of AD, both seeded with the first AD value
    (not with a mean, unlike EMA), as TA-Lib does."""

    kind = "candle"

    def __init__(self, fast: int, slow: int) -> None:
        super().__init__()
        self._fast_k = 2.0 / (fast + 1)
        self._slow_k = 2.0 / (slow + 1)
        self._lookback = max(fast, slow) - 1
        self._ad = 0.0
        self._fast: float | None = None
        self._slow: float | None = None
        self._count = 0

    def update_candle(self, bar: Bar) -> None:
        self._ad += _money_flow_volume(bar)
        ad = self._ad
        if self._fast is None or self._slow is None:
            self._fast = self._slow = ad
        else:
            self._fast = (self._fast_k * ad) + ((1.0 - self._fast_k) * self._fast)
            self._slow = (self._slow_k * ad) + ((1.0 - self._slow_k) * self._slow)
        self._count += 1
        if self._count > self._lookback:
            self.value = self._fast - self._slow


class Vwap(Indicator):
    """Σ typical price · volume / Σ volume since the anchor (00:00 UTC, or Monday 00:00 UTC);
    undefined while no volume traded since it."""

    kind = "candle"

    def __init__(self, anchor: str = "1d") -> None:
        super().__init__()
        self._week = anchor == "1w"
        self._period: int | None = None
        self._weighted = 0.0
        self._volume = 0.0

    def update_candle(self, bar: Bar) -> None:
        if self._week:
            period = (bar.open_ms - _MONDAY_OFFSET_MS) // (7 * _DAY_MS)
        else:
            period = bar.open_ms // _DAY_MS
        if period != self._period:
            self._period, self._weighted, self._volume = period, 0.0, 0.0
        self._weighted += (bar.high + bar.low + bar.close) / 3.0 * bar.volume
        self._volume += bar.volume
        self.value = self._weighted / self._volume if self._volume > 0.0 else None
