"""The shapes of the indicator catalog: parameters, resolved arguments, one indicator's entry,
and the moving-average lookbacks the entries compute with (qkt.dsl.catalog holds the table)."""

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
FORGET: Final = 20.8


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


def zero(_: Args) -> int:
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
    settle: Count = zero
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
    return math.ceil(FORGET * (n + 1) / 2)


def ema_settle(n: int) -> int:
    return math.ceil(FORGET * (n + 1) / 2)


def wilder_settle(n: int) -> int:
    return math.ceil(FORGET * n)


def whole(name: str, default: float, low: float = 2, doc: str = "") -> Param:
    return Param(name, default, low, doc=doc)


def real(name: str, default: float, low: float, high: float, doc: str = "") -> Param:
    return Param(name, default, low, high, whole=False, doc=doc)


def period_only(default: int, low: int = 2) -> tuple[Param, ...]:
    return (whole("timeperiod", default, low),)


def after_period(offset: int = -1) -> Count:
    """Lookback `timeperiod + offset`."""
    return lambda a: a.int(0) + offset


def ma_spec(name: str, summary: str, default: int = 30, low: int = 2) -> Spec:
    extra: tuple[Param, ...] = (real("vfactor", 0.7, 0, 1),) if name == "T3" else ()
    return Spec(
        name,
        "moving averages",
        summary,
        "series",
        (whole("timeperiod", default, low), *extra),
        lambda a: ma_lookback(name, a.int(0)),
        settle=lambda a: ma_settle(name, a.int(0)),
    )


def ma_of(matype_index: int, period_index: int) -> Count:
    return lambda a: ma_lookback(a.matype, a.int(period_index))


MACD_LOOKBACK: Count = lambda a: max(a.int(0), a.int(1)) - 1 + a.int(2) - 1  # noqa: E731
STOCH_LOOKBACK: Count = lambda a: (  # noqa: E731
    a.int(0) - 1 + ma_lookback(a.matype, a.int(1)) + ma_lookback(a.matype, a.int(2))
)
STOCHF_LOOKBACK: Count = lambda a: a.int(0) - 1 + ma_lookback(a.matype, a.int(1))  # noqa: E731
PO_LOOKBACK: Count = lambda a: ma_lookback(a.matype, max(a.int(0), a.int(1)))  # noqa: E731
PO_SETTLE: Count = lambda a: ma_settle(a.matype, max(a.int(0), a.int(1)))  # noqa: E731
WILDER_SETTLE: Count = lambda a: wilder_settle(a.int(0))  # noqa: E731
