"""The one table of indicators and functions: the checker, the compiler, the engine's factory,
`qkt check --list-indicators` and docs/indicators.md all read it, so they cannot drift.

Names, parameters (order and defaults) and outputs are TA-Lib's, with TA-Lib's MA-type
parameters left out of the positional list: where an indicator smooths with a moving average of
the user's choice, that choice is the keyword `MATYPE=EMA` (default: TA-Lib's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

Input: TypeAlias = Literal["series", "candle", "two series"]

MA_TYPES: Final = ("SMA", "EMA", "WMA", "DEMA", "TEMA", "TRIMA", "KAMA", "T3")
ANCHORS: Final = ("1d", "1w")
# How many candles of history a key may ask for, whatever its indicators say.
MAX_HISTORY: Final = 5_000
# Smoothing with factor k forgets its start as (1 - k)^m: below 1e-9 after ~20.7 / k values.
_FORGET: Final = 20.8


@dataclass(frozen=True, slots=True)
class Param:
    """One numeric parameter: `whole` ones are periods; `low`..`high` is what TA-Lib accepts."""

    name: str
    default: float
    low: float
    high: float = 100_000
    whole: bool = True
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Args:
    """A call's resolved arguments: every parameter (defaults filled in), the MA type, anchor."""

    params: tuple[float, ...]
    matype: str = "SMA"
    anchor: str = "1d"

    def int(self, index: int) -> int:
        return int(self.params[index])


Count = Callable[[Args], int]


def _zero(_: Args) -> int:
    return 0


@dataclass(frozen=True, slots=True)
class Spec:
    """One indicator: what it takes, what it gives, how long it takes to be warm.

    `lookback` is TA-Lib's: how many inputs come before the first value. `settle` is how many
    more a smoothing indicator needs before its value no longer depends on where its history
    started (to 1e-9), for `Program.history_needed`.
    """

    name: str
    group: str
    summary: str
    input: Input
    params: tuple[Param, ...]
    lookback: Count
    outputs: tuple[str, ...] = ()
    matype: str | None = None  # the default MA type when MATYPE= is accepted
    settle: Count = _zero
    talib: bool = True
    note: str = ""

    @property
    def multi(self) -> bool:
        return bool(self.outputs)

    def signature(self) -> str:
        first = {"series": "x", "candle": "a.candle", "two series": "x, y"}[self.input]
        params = ", ".join(p.name for p in self.params)
        extra = ", MATYPE=" + (self.matype or "") if self.matype else ""
        if self.name == "VWAP":
            extra = ", ANCHOR=1d"
        return f"{self.name}({first}{', ' if params else ''}{params}{extra})"


def ma_lookback(matype: str, n: int) -> int:
    """TA-Lib's lookback of its moving average `matype` over n (n = 1 copies the input)."""
    if n <= 1:
        return 0
    return {"DEMA": 2 * (n - 1), "TEMA": 3 * (n - 1), "KAMA": n, "T3": 6 * (n - 1)}.get(
        matype, n - 1
    )


def ma_settle(matype: str, n: int) -> int:
    """Extra values an MA needs to forget its seed (0 for finite windows)."""
    if n <= 1 or matype in ("SMA", "WMA", "TRIMA"):
        return 0
    if matype == "KAMA":
        return MAX_HISTORY  # its slowest factor is (2/31)^2: it remembers for thousands of values
    return math.ceil(_FORGET * (n + 1) / 2)


def _ema_settle(n: int) -> int:
    return math.ceil(_FORGET * (n + 1) / 2)


def _wilder_settle(n: int) -> int:
    return math.ceil(_FORGET * n)


def _p(name: str, default: float, low: float = 2, doc: str = "") -> Param:
    return Param(name, default, low, doc=doc)


def _f(name: str, default: float, low: float, high: float, doc: str = "") -> Param:
    return Param(name, default, low, high, whole=False, doc=doc)


def _n(default: int, low: int = 2) -> tuple[Param, ...]:
    return (_p("timeperiod", default, low),)


def _lb(offset: int = -1) -> Count:
    """Lookback `timeperiod + offset`."""
    return lambda a: a.int(0) + offset


def _ma_spec(name: str, summary: str, default: int = 30, low: int = 2) -> Spec:
    extra: tuple[Param, ...] = (_f("vfactor", 0.7, 0, 1),) if name == "T3" else ()
    return Spec(
        name,
        "moving averages",
        summary,
        "series",
        (_p("timeperiod", default, low), *extra),
        lambda a: ma_lookback(name, a.int(0)),
        settle=lambda a: ma_settle(name, a.int(0)),
    )


def _ma_of(matype_index: int, period_index: int) -> Count:
    return lambda a: ma_lookback(a.matype, a.int(period_index))


_MACD_LOOKBACK: Count = lambda a: max(a.int(0), a.int(1)) - 1 + a.int(2) - 1  # noqa: E731
_STOCH_LOOKBACK: Count = lambda a: (  # noqa: E731
    a.int(0) - 1 + ma_lookback(a.matype, a.int(1)) + ma_lookback(a.matype, a.int(2))
)
_STOCHF_LOOKBACK: Count = lambda a: a.int(0) - 1 + ma_lookback(a.matype, a.int(1))  # noqa: E731
_PO_LOOKBACK: Count = lambda a: ma_lookback(a.matype, max(a.int(0), a.int(1)))  # noqa: E731
_PO_SETTLE: Count = lambda a: ma_settle(a.matype, max(a.int(0), a.int(1)))  # noqa: E731
_WILDER: Count = lambda a: _wilder_settle(a.int(0))  # noqa: E731

_SPECS: tuple[Spec, ...] = (
    # -- moving averages
    _ma_spec("SMA", "simple moving average", low=1),
    _ma_spec("EMA", "exponential moving average, seeded with the SMA of its first n values", low=1),
    _ma_spec("WMA", "linearly weighted moving average (weights 1..n, newest heaviest)"),
    _ma_spec("DEMA", "double EMA: 2·EMA − EMA(EMA)"),
    _ma_spec("TEMA", "triple EMA: 3·EMA − 3·EMA(EMA) + EMA(EMA(EMA))"),
    _ma_spec("TRIMA", "triangular moving average (an SMA of an SMA)"),
    _ma_spec("KAMA", "Kaufman adaptive moving average (fast 2, slow 30)"),
    _ma_spec("T3", "Tillson T3: six chained EMAs weighted by the volume factor", default=5),
    Spec(
        "MA",
        "moving averages",
        "the moving average chosen with MATYPE (default SMA)",
        "series",
        _n(30, 1),
        _ma_of(1, 0),
        matype="SMA",
        settle=lambda a: ma_settle(a.matype, a.int(0)),
    ),
    Spec(
        "HMA",
        "moving averages",
        "Hull moving average: WMA(2·WMA(x, n/2) − WMA(x, n), √n), halves and roots rounded down",
        "series",
        _n(20, 4),
        lambda a: a.int(0) - 1 + math.isqrt(a.int(0)) - 1,
        talib=False,
    ),
    # -- bands and channels
    Spec(
        "BBANDS",
        "bands and channels",
        "Bollinger bands: MA(n) ± k·population standard deviation over n",
        "series",
        (_p("timeperiod", 5), _f("nbdevup", 2, -3e37, 3e37), _f("nbdevdn", 2, -3e37, 3e37)),
        lambda a: ma_lookback(a.matype, a.int(0)),
        outputs=("upper", "middle", "lower"),
        matype="SMA",
        settle=lambda a: ma_settle(a.matype, a.int(0)),
    ),
    Spec(
        "DONCHIAN",
        "bands and channels",
        "Donchian channel: highest high and lowest low of n candles, and their midpoint",
        "candle",
        _n(20, 1),
        _lb(),
        outputs=("upper", "middle", "lower"),
        talib=False,
    ),
    Spec(
        "KELTNER",
        "bands and channels",
        "Keltner channel: EMA(close, n) ± mult·ATR(n)",
        "candle",
        (_p("timeperiod", 20), _f("mult", 2, 0, 1000)),
        lambda a: a.int(0),
        outputs=("upper", "middle", "lower"),
        settle=_WILDER,
        talib=False,
    ),
    Spec(
        "MIDPOINT",
        "bands and channels",
        "(highest + lowest) / 2 of x over n",
        "series",
        _n(14),
        _lb(),
    ),
    Spec(
        "MIDPRICE",
        "bands and channels",
        "(highest high + lowest low) / 2 over n candles",
        "candle",
        _n(14),
        _lb(),
    ),
    Spec(
        "HIGHEST", "bands and channels", "highest x over n (TA-Lib's MAX)", "series", _n(30), _lb()
    ),
    Spec("LOWEST", "bands and channels", "lowest x over n (TA-Lib's MIN)", "series", _n(30), _lb()),
    # -- momentum
    Spec(
        "RSI",
        "momentum",
        "Wilder's relative strength index (50 when nothing moved)",
        "series",
        _n(14),
        _lb(0),
        settle=_WILDER,
    ),
    Spec(
        "MACD",
        "momentum",
        "EMA(fast) − EMA(slow), its EMA(signal), and their difference",
        "series",
        (_p("fastperiod", 12), _p("slowperiod", 26), _p("signalperiod", 9, 1)),
        _MACD_LOOKBACK,
        outputs=("macd", "signal", "hist"),
        settle=lambda a: _ema_settle(max(a.int(0), a.int(1))) + _ema_settle(a.int(2)),
    ),
    Spec(
        "STOCH",
        "momentum",
        "slow stochastic: %K smoothed by MA(slowk), %D = MA(slowd) of that",
        "candle",
        (_p("fastk_period", 5, 1), _p("slowk_period", 3, 1), _p("slowd_period", 3, 1)),
        _STOCH_LOOKBACK,
        outputs=("k", "d"),
        matype="SMA",
        settle=lambda a: ma_settle(a.matype, a.int(1)) + ma_settle(a.matype, a.int(2)),
    ),
    Spec(
        "STOCHF",
        "momentum",
        "fast stochastic: raw %K and %D = MA(fastd) of it",
        "candle",
        (_p("fastk_period", 5, 1), _p("fastd_period", 3, 1)),
        _STOCHF_LOOKBACK,
        outputs=("k", "d"),
        matype="SMA",
        settle=lambda a: ma_settle(a.matype, a.int(1)),
    ),
    Spec(
        "STOCHRSI",
        "momentum",
        "the fast stochastic of RSI(n)",
        "series",
        (_p("timeperiod", 14), _p("fastk_period", 5, 1), _p("fastd_period", 3, 1)),
        lambda a: a.int(0) + a.int(1) - 1 + ma_lookback(a.matype, a.int(2)),
        outputs=("k", "d"),
        matype="SMA",
        settle=lambda a: _wilder_settle(a.int(0)) + ma_settle(a.matype, a.int(2)),
    ),
    Spec("WILLR", "momentum", "Williams' %R over n candles", "candle", _n(14), _lb()),
    Spec(
        "CCI",
        "momentum",
        "commodity channel index of the typical price (O(n) a candle: mean deviation)",
        "candle",
        _n(14),
        _lb(),
    ),
    Spec(
        "MFI",
        "momentum",
        "money flow index (0 when no money flowed)",
        "candle",
        _n(14),
        _lb(0),
    ),
    Spec("ROC", "momentum", "(x / x n ago − 1) · 100", "series", _n(10, 1), _lb(0)),
    Spec("ROCP", "momentum", "(x − x n ago) / x n ago", "series", _n(10, 1), _lb(0)),
    Spec("ROCR", "momentum", "x / x n ago", "series", _n(10, 1), _lb(0)),
    Spec("ROCR100", "momentum", "x / x n ago · 100", "series", _n(10, 1), _lb(0)),
    Spec("MOM", "momentum", "x − x n ago", "series", _n(10, 1), _lb(0)),
    Spec(
        "CMO",
        "momentum",
        "Chande momentum oscillator, Wilder-smoothed as TA-Lib does",
        "series",
        _n(14),
        _lb(0),
        settle=_WILDER,
    ),
    Spec(
        "PPO",
        "momentum",
        "(MA(fast) − MA(slow)) / MA(slow) · 100",
        "series",
        (_p("fastperiod", 12), _p("slowperiod", 26)),
        _PO_LOOKBACK,
        matype="SMA",
        settle=_PO_SETTLE,
    ),
    Spec(
        "APO",
        "momentum",
        "MA(fast) − MA(slow)",
        "series",
        (_p("fastperiod", 12), _p("slowperiod", 26)),
        _PO_LOOKBACK,
        matype="SMA",
        settle=_PO_SETTLE,
    ),
    Spec(
        "TRIX",
        "momentum",
        "1-candle rate of change (%) of EMA(EMA(EMA(x)))",
        "series",
        _n(30, 1),
        lambda a: 3 * (a.int(0) - 1) + 1,
        settle=lambda a: 3 * _ema_settle(a.int(0)),
    ),
    Spec(
        "ULTOSC",
        "momentum",
        "ultimate oscillator over three periods (weights 4, 2, 1 from the shortest)",
        "candle",
        (_p("timeperiod1", 7, 1), _p("timeperiod2", 14, 1), _p("timeperiod3", 28, 1)),
        lambda a: int(max(a.params)),
    ),
    # -- trend
    Spec(
        "ADX",
        "trend",
        "Wilder's average directional index",
        "candle",
        _n(14),
        lambda a: 2 * a.int(0) - 1,
        settle=lambda a: 2 * _wilder_settle(a.int(0)),
    ),
    Spec(
        "ADXR",
        "trend",
        "(ADX + ADX n − 1 candles ago) / 2",
        "candle",
        _n(14),
        lambda a: 3 * a.int(0) - 2,
        settle=lambda a: 2 * _wilder_settle(a.int(0)),
    ),
    Spec(
        "PLUS_DI",
        "trend",
        "+DI: Wilder-smoothed +DM / TR · 100",
        "candle",
        _n(14),
        _lb(0),
        settle=_WILDER,
    ),
    Spec(
        "MINUS_DI",
        "trend",
        "−DI: Wilder-smoothed −DM / TR · 100",
        "candle",
        _n(14),
        _lb(0),
        settle=_WILDER,
    ),
    Spec("PLUS_DM", "trend", "Wilder-smoothed +DM", "candle", _n(14), _lb(-1), settle=_WILDER),
    Spec("MINUS_DM", "trend", "Wilder-smoothed −DM", "candle", _n(14), _lb(-1), settle=_WILDER),
    Spec("DX", "trend", "directional movement index", "candle", _n(14), _lb(0), settle=_WILDER),
    Spec(
        "AROON",
        "trend",
        "candles since the highest high / lowest low of the last n + 1, as 0..100",
        "candle",
        _n(14),
        _lb(0),
        outputs=("down", "up"),
    ),
    Spec("AROONOSC", "trend", "AROON up − AROON down", "candle", _n(14), _lb(0)),
    Spec(
        "SAR",
        "trend",
        "Wilder's parabolic stop and reverse",
        "candle",
        (_f("acceleration", 0.02, 0, 3e37), _f("maximum", 0.2, 0, 3e37)),
        lambda a: 1,
        settle=lambda a: 200,
        note="SAR depends on its starting candle until its first reversals: 200 candles asked",
    ),
    Spec(
        "SUPERTREND",
        "trend",
        "hl2 ∓ mult·ATR(n) bands that only tighten; direction 1 up, −1 down",
        "candle",
        (_p("timeperiod", 10, 1), _f("mult", 3, 0, 1000)),
        lambda a: a.int(0),
        outputs=("value", "direction"),
        settle=_WILDER,
        talib=False,
    ),
    Spec(
        "LINEARREG",
        "trend",
        "least-squares line over n, its value at the newest point",
        "series",
        _n(14),
        _lb(),
    ),
    Spec("LINEARREG_SLOPE", "trend", "slope of that line, per candle", "series", _n(14), _lb()),
    Spec("LINEARREG_INTERCEPT", "trend", "that line at the oldest point", "series", _n(14), _lb()),
    Spec(
        "TSF", "trend", "time series forecast: that line one candle ahead", "series", _n(14), _lb()
    ),
    # -- volatility
    Spec(
        "ATR",
        "volatility",
        "Wilder's average true range",
        "candle",
        _n(14, 1),
        _lb(0),
        settle=_WILDER,
    ),
    Spec("NATR", "volatility", "ATR / close · 100", "candle", _n(14, 1), _lb(0), settle=_WILDER),
    Spec("TRANGE", "volatility", "true range of the candle", "candle", (), lambda a: 1),
    Spec(
        "STDDEV",
        "volatility",
        "population standard deviation over n, times nbdev",
        "series",
        (_p("timeperiod", 5), _f("nbdev", 1, -3e37, 3e37)),
        _lb(),
    ),
    Spec(
        "VAR",
        "volatility",
        "population variance over n (TA-Lib ignores nbdev)",
        "series",
        (_p("timeperiod", 5, 1), _f("nbdev", 1, -3e37, 3e37)),
        _lb(),
    ),
    # -- volume
    Spec(
        "OBV",
        "volume",
        "on-balance volume from the first candle (a running total: its level depends on it)",
        "candle",
        (),
        _zero,
    ),
    Spec(
        "AD",
        "volume",
        "Chaikin accumulation/distribution line (a running total)",
        "candle",
        (),
        _zero,
    ),
    Spec(
        "ADOSC",
        "volume",
        "Chaikin oscillator: EMA(fast) − EMA(slow) of AD, both seeded with the first AD",
        "candle",
        (_p("fastperiod", 3), _p("slowperiod", 10)),
        lambda a: max(a.int(0), a.int(1)) - 1,
        settle=lambda a: _ema_settle(max(a.int(0), a.int(1))),
    ),
    Spec(
        "VWAP",
        "volume",
        "volume-weighted typical price since 00:00 UTC (ANCHOR=1d) or Monday (ANCHOR=1w)",
        "candle",
        (),
        _zero,
        talib=False,
    ),
    # -- statistics
    Spec(
        "CORREL",
        "statistics",
        "Pearson correlation of x and y over n",
        "two series",
        _n(30, 1),
        _lb(),
    ),
    Spec(
        "BETA",
        "statistics",
        "beta of y's returns on x's over n returns (TA-Lib's BETA(real0, real1))",
        "two series",
        _n(5, 1),
        _lb(0),
    ),
)

INDICATORS: Final[dict[str, Spec]] = {spec.name: spec for spec in _SPECS}


@dataclass(frozen=True, slots=True)
class Function:
    """A math function: exact Decimal where the result is rational."""

    name: str
    arity: tuple[int, int | None]  # at least, at most (None: any number)
    summary: str


FUNCTIONS: Final[dict[str, Function]] = {
    f.name: f
    for f in (
        Function("ABS", (1, 1), "absolute value (exact)"),
        Function(
            "MIN",
            (2, None),
            "smallest of two or more values (exact); MIN(x) SINCE ... is the aggregate",
        ),
        Function(
            "MAX",
            (2, None),
            "largest of two or more values (exact); MAX(x) SINCE ... is the aggregate",
        ),
        Function("SQRT", (1, 1), "square root to 16 digits; undefined below 0"),
        Function("LN", (1, 1), "natural logarithm to 16 digits; undefined at 0 and below"),
        Function("EXP", (1, 1), "e to the power x, to 16 digits; undefined if it overflows"),
        Function(
            "ROUND", (1, 2), "ROUND(x, digits): to that many decimals (default 0), half to even"
        ),
        Function("FLOOR", (1, 1), "largest whole number ≤ x (exact)"),
        Function("CEIL", (1, 1), "smallest whole number ≥ x (exact)"),
        Function("SIGN", (1, 1), "−1, 0 or 1"),
    )
}


def history_of(spec: Spec, args: Args, timeframe_ms: int) -> int:
    """Inputs before a value no longer depends on where its history started (to 1e-9)."""
    if spec.name == "VWAP":
        anchor_ms = (7 if args.anchor == "1w" else 1) * 86_400_000
        return max(1, anchor_ms // max(1, timeframe_ms))
    return spec.lookback(args) + spec.settle(args)
