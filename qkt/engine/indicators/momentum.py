"""Momentum indicators as TA-Lib computes them: RSI, CMO, MACD, APO/PPO, TRIX, the rate-of-change
family, the stochastics, WILLR, CCI, MFI and ULTOSC.

Where TA-Lib tests a float against its TA_IS_ZERO (|x| < 1e-8), we test against 0: the same
result at any price a test series uses, and no silent 0 for assets priced below a cent.
"""

from __future__ import annotations

from collections import deque

from qkt.engine.indicators.averages import Delayed, Ema, make_ma
from qkt.engine.indicators.base import Bar, Extreme, Indicator


class _GainLoss(Indicator):
    """Wilder averages of gains and losses: the mean of the first n changes, then smoothing."""

    def __init__(self, period: int) -> None:
        super().__init__()
        if period < 1:
            raise ValueError(f"an indicator period must be at least 1, got {period}")
        self.period = period
        self._prev: float | None = None
        self._changes = 0
        self._gain = 0.0
        self._loss = 0.0

    def update(self, x: float) -> None:
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
                self.value = self._result(self._gain, self._loss)
            return
        self._loss *= n - 1
        self._gain *= n - 1
        if change < 0:
            self._loss -= change
        else:
            self._gain += change
        self._loss /= n
        self._gain /= n
        self.value = self._result(self._gain, self._loss)

    def _result(self, gain: float, loss: float) -> float:
        raise NotImplementedError


class Rsi(_GainLoss):
    """Wilder's RSI; 50 when nothing moved (TA-Lib prints 0), 100 · G / (G + L) otherwise."""

    def _result(self, gain: float, loss: float) -> float:
        if loss == 0.0:
            return 100.0 if gain > 0.0 else 50.0
        return 100.0 * (gain / (gain + loss))


class Cmo(_GainLoss):
    """Chande: 100 · (G − L) / (G + L) on Wilder averages, as TA-Lib; 0 when nothing moved."""

    def _result(self, gain: float, loss: float) -> float:
        total = gain + loss
        return 100.0 * ((gain - loss) / total) if total != 0.0 else 0.0


class Macd(Indicator):
    """EMA(fast) − EMA(slow); the fast EMA starts where the slow one does, as in TA-Lib."""

    outputs = ("macd", "signal", "hist")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        super().__init__()
        fast, slow = min(fast, slow), max(fast, slow)  # TA-Lib swaps them
        self._fast = Delayed(Ema(fast), slow - fast)
        self._slow = Ema(slow)
        self._signal = Ema(signal)
        self.macd: float | None = None
        self.signal: float | None = None
        self.hist: float | None = None

    def update(self, x: float) -> None:
        self._fast.update(x)
        self._slow.update(x)
        fast, slow = self._fast.value, self._slow.value
        if fast is None or slow is None:
            return
        line = fast - slow
        self._signal.update(line)
        if (signal := self._signal.value) is not None:
            self.macd, self.signal, self.hist = line, signal, line - signal
            self.value = line


class PriceOscillator(Indicator):
    """APO (MA(fast) − MA(slow)) or, with `percent`, PPO ((fast − slow) / slow · 100)."""

    def __init__(self, fast: int, slow: int, matype: str, percent: bool) -> None:
        super().__init__()
        fast, slow = min(fast, slow), max(fast, slow)  # TA-Lib swaps them
        self._fast = make_ma(matype, fast)  # unlike MACD's, seeded on the first values
        self._slow = make_ma(matype, slow)
        self._percent = percent

    def update(self, x: float) -> None:
        self._fast.update(x)
        self._slow.update(x)
        fast, slow = self._fast.value, self._slow.value
        if fast is None or slow is None:
            return
        if not self._percent:
            self.value = fast - slow
        else:
            self.value = ((fast - slow) / slow) * 100.0 if slow != 0.0 else 0.0


class Trix(Indicator):
    """Rate of change (%) over one value of EMA(EMA(EMA(x)))."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self._emas = (Ema(period), Ema(period), Ema(period))
        self._prev: float | None = None

    def update(self, x: float) -> None:
        value: float | None = x
        for ema in self._emas:
            if value is None:
                return
            ema.update(value)
            value = ema.value
        if value is None:
            return
        prev, self._prev = self._prev, value
        if prev is not None:
            self.value = ((value / prev) - 1.0) * 100.0 if prev != 0.0 else 0.0


class RateOfChange(Indicator):
    """MOM, ROC, ROCP, ROCR, ROCR100: x against x n values ago (0 where TA-Lib divides by 0)."""

    def __init__(self, period: int, form: str) -> None:
        super().__init__()
        self._window: deque[float] = deque(maxlen=period + 1)
        self._form = form

    def update(self, x: float) -> None:
        window = self._window
        window.append(x)
        if len(window) < (window.maxlen or 0):
            return
        old = window[0]
        if self._form == "MOM":
            self.value = x - old
        elif old == 0.0:
            self.value = 0.0
        elif self._form == "ROC":
            self.value = ((x / old) - 1.0) * 100.0
        elif self._form == "ROCP":
            self.value = (x - old) / old
        elif self._form == "ROCR":
            self.value = x / old
        else:
            self.value = (x / old) * 100.0


def _spread(high: float, low: float) -> float:
    """high − low, or 0 when it is only rounding noise (STOCHRSI of an RSI that stood still)."""
    spread = high - low
    return spread if spread > 1e-12 * max(abs(high), abs(low)) else 0.0


def _fast_k(close: float, high: Extreme, low: Extreme) -> float:
    diff = _spread(high.best, low.best) / 100.0
    return (close - low.best) / diff if diff != 0.0 else 0.0


class StochF(Indicator):
    """Fast stochastic of candles (or of one series: STOCHRSI): raw %K, %D = MA of %K."""

    outputs = ("k", "d")
    kind = "candle"

    def __init__(self, fastk: int, fastd: int, matype: str) -> None:
        super().__init__()
        self._high, self._low = Extreme(fastk, True), Extreme(fastk, False)
        self._d = make_ma(matype, fastd)
        self.k: float | None = None
        self.d: float | None = None

    def update_candle(self, bar: Bar) -> None:
        self.feed(bar.high, bar.low, bar.close)

    def feed(self, high: float, low: float, close: float) -> None:
        self._high.push(high)
        self._low.push(low)
        if not self._high.full:
            return
        k = _fast_k(close, self._high, self._low)
        self._d.update(k)
        if self._d.value is not None:
            self.k, self.d = k, self._d.value
            self.value = k


class Stoch(Indicator):
    """Slow stochastic: %K = MA(slowk) of the raw %K, %D = MA(slowd) of %K."""

    outputs = ("k", "d")
    kind = "candle"

    def __init__(self, fastk: int, slowk: int, slowd: int, matype: str) -> None:
        super().__init__()
        self._high, self._low = Extreme(fastk, True), Extreme(fastk, False)
        self._k, self._d = make_ma(matype, slowk), make_ma(matype, slowd)
        self.k: float | None = None
        self.d: float | None = None

    def update_candle(self, bar: Bar) -> None:
        self._high.push(bar.high)
        self._low.push(bar.low)
        if not self._high.full:
            return
        self._k.update(_fast_k(bar.close, self._high, self._low))
        if (k := self._k.value) is None:
            return
        self._d.update(k)
        if self._d.value is not None:
            self.k, self.d = k, self._d.value
            self.value = k


class StochRsi(Indicator):
    """STOCHF of RSI(n), the RSI being its high, low and close."""

    outputs = ("k", "d")

    def __init__(self, period: int, fastk: int, fastd: int, matype: str) -> None:
        super().__init__()
        self._rsi = Rsi(period)
        self._stoch = StochF(fastk, fastd, matype)
        self.k: float | None = None
        self.d: float | None = None

    def update(self, x: float) -> None:
        self._rsi.update(x)
        if (rsi := self._rsi.value) is not None:
            self._stoch.feed(rsi, rsi, rsi)
            self.k, self.d, self.value = self._stoch.k, self._stoch.d, self._stoch.value


class Willr(Indicator):
    """Williams' %R: (highest − close) / (highest − lowest) · −100 (0 on a flat window)."""

    kind = "candle"

    def __init__(self, period: int) -> None:
        super().__init__()
        self._high, self._low = Extreme(period, True), Extreme(period, False)

    def update_candle(self, bar: Bar) -> None:
        self._high.push(bar.high)
        self._low.push(bar.low)
        if self._high.full:
            diff = _spread(self._high.best, self._low.best) / -100.0
            self.value = (self._high.best - bar.close) / diff if diff != 0.0 else 0.0
