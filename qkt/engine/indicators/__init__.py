"""Incremental indicators (O(1) or amortized O(1) a candle; CCI is O(n)), each exactly TA-Lib's
definition where TA-Lib has one (`qkt.dsl.catalog` is the table; docs/indicators.md the reference).

`make_indicator(name, args)` builds the instance for a call site; `value`/`output(field)` are
floats, None until warm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from qkt.dsl.catalog import INDICATORS, Args
from qkt.engine.indicators.averages import T3, Dema, Ema, Hma, Kama, Sma, Tema, Trima, Wma, make_ma
from qkt.engine.indicators.base import Bar, Indicator
from qkt.engine.indicators.channels import Channel, Keltner, Window
from qkt.engine.indicators.momentum import (
    Cmo,
    Macd,
    PriceOscillator,
    RateOfChange,
    Rsi,
    Stoch,
    StochF,
    StochRsi,
    Trix,
    Willr,
)
from qkt.engine.indicators.stats import Bbands, Beta, Correl, LinearReg, Stddev
from qkt.engine.indicators.trend import Aroon, Atr, Directional, Natr, Sar, Supertrend, Trange
from qkt.engine.indicators.volume import Ad, Adosc, Cci, Mfi, Obv, Ultosc, Vwap

__all__ = ["Atr", "Bar", "Ema", "Indicator", "Rsi", "Sma", "make_indicator"]

NAMES: Final = tuple(INDICATORS)

Factory = Callable[[Args], Indicator]


def _period(cls: Callable[[int], Indicator]) -> Factory:
    return lambda a: cls(a.int(0))


def _form(cls: Callable[[int, str], Indicator], form: str) -> Factory:
    return lambda a: cls(a.int(0), form)


_FACTORIES: Final[dict[str, Factory]] = {
    "SMA": _period(Sma),
    "EMA": _period(Ema),
    "WMA": _period(Wma),
    "DEMA": _period(Dema),
    "TEMA": _period(Tema),
    "TRIMA": _period(Trima),
    "KAMA": _period(Kama),
    "T3": lambda a: T3(a.int(0), a.params[1]),
    "MA": lambda a: make_ma(a.matype, a.int(0)),
    "HMA": _period(Hma),
    "BBANDS": lambda a: Bbands(a.int(0), a.params[1], a.params[2], a.matype),
    "DONCHIAN": _period(Channel),
    "KELTNER": lambda a: Keltner(a.int(0), a.params[1]),
    "MIDPOINT": _form(Window, "MIDPOINT"),
    "MIDPRICE": _period(Channel),
    "HIGHEST": _form(Window, "HIGHEST"),
    "LOWEST": _form(Window, "LOWEST"),
    "RSI": _period(Rsi),
    "MACD": lambda a: Macd(a.int(0), a.int(1), a.int(2)),
    "STOCH": lambda a: Stoch(a.int(0), a.int(1), a.int(2), a.matype),
    "STOCHF": lambda a: StochF(a.int(0), a.int(1), a.matype),
    "STOCHRSI": lambda a: StochRsi(a.int(0), a.int(1), a.int(2), a.matype),
    "WILLR": _period(Willr),
    "CCI": _period(Cci),
    "MFI": _period(Mfi),
    "ROC": _form(RateOfChange, "ROC"),
    "ROCP": _form(RateOfChange, "ROCP"),
    "ROCR": _form(RateOfChange, "ROCR"),
    "ROCR100": _form(RateOfChange, "ROCR100"),
    "MOM": _form(RateOfChange, "MOM"),
    "CMO": _period(Cmo),
    "PPO": lambda a: PriceOscillator(a.int(0), a.int(1), a.matype, percent=True),
    "APO": lambda a: PriceOscillator(a.int(0), a.int(1), a.matype, percent=False),
    "TRIX": _period(Trix),
    "ULTOSC": lambda a: Ultosc(a.int(0), a.int(1), a.int(2)),
    "ADX": _form(Directional, "ADX"),
    "ADXR": _form(Directional, "ADXR"),
    "PLUS_DI": _form(Directional, "PLUS_DI"),
    "MINUS_DI": _form(Directional, "MINUS_DI"),
    "PLUS_DM": _form(Directional, "PLUS_DM"),
    "MINUS_DM": _form(Directional, "MINUS_DM"),
    "DX": _form(Directional, "DX"),
    "AROON": _period(Aroon),
    "AROONOSC": lambda a: Aroon(a.int(0), oscillator=True),
    "SAR": lambda a: Sar(a.params[0], a.params[1]),
    "SUPERTREND": lambda a: Supertrend(a.int(0), a.params[1]),
    "LINEARREG": _form(LinearReg, "LINEARREG"),
    "LINEARREG_SLOPE": _form(LinearReg, "LINEARREG_SLOPE"),
    "LINEARREG_INTERCEPT": _form(LinearReg, "LINEARREG_INTERCEPT"),
    "TSF": _form(LinearReg, "TSF"),
    "ATR": _period(Atr),
    "NATR": _period(Natr),
    "TRANGE": lambda a: Trange(),
    "STDDEV": lambda a: Stddev(a.int(0), a.params[1]),
    "VAR": lambda a: Stddev(a.int(0), 1.0, variance=True),
    "OBV": lambda a: Obv(),
    "AD": lambda a: Ad(),
    "ADOSC": lambda a: Adosc(a.int(0), a.int(1)),
    "VWAP": lambda a: Vwap(a.anchor),
    "CORREL": _period(Correl),
    "BETA": _period(Beta),
}


def make_indicator(name: str, args: Args | int) -> Indicator:
    """A fresh instance of the indicator called `name` (a key of the catalog); an int is the
    first parameter with every other one at its default."""
    spec = INDICATORS.get(name)
    if spec is None or name not in _FACTORIES:
        raise ValueError(f"unknown indicator {name!r}; known: {', '.join(NAMES)}")
    if isinstance(args, int):
        defaults = tuple(p.default for p in spec.params)
        args = Args((float(args), *defaults[1:]), spec.matype or "SMA")
    for param, value in zip(spec.params, args.params, strict=False):
        if value < param.low:
            raise ValueError(f"{name}'s {param.name} must be at least {param.low:g}, got {value:g}")
    return _FACTORIES[name](args)
