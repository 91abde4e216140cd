"""The compiled expressions of a `Program`: plain frozen values the engine evaluates (their
semantics are in program.py's docstring).

Its own module: the largest family of the program's nodes. `qkt.dsl.program` re-exports every
name, and stays the place to import them from.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeAlias

from qkt.dsl.catalog import INDICATORS, Args

FieldName: TypeAlias = Literal["open", "high", "low", "close", "volume"]
IndicatorName: TypeAlias = str  # a key of qkt.dsl.catalog.INDICATORS
AccountField: TypeAlias = Literal[
    "equity", "balance", "realized_pnl", "unrealized_pnl", "total_pnl"
]


# ---------------------------------------------------------------------------------------------
# Expressions. Values are Decimal, bool or undefined (the engine's choice of sentinel).


@dataclass(frozen=True, slots=True)
class Const:
    value: Decimal | bool


@dataclass(frozen=True, slots=True)
class FieldRef:
    """`btc.close`: the field of the stream's latest closed candle (undefined before one)."""

    stream: str
    field: FieldName


@dataclass(frozen=True, slots=True)
class CandleRef:
    """`btc.candle`: the whole candle; only ever the source of an ATR."""

    stream: str


@dataclass(frozen=True, slots=True)
class IndicatorCall:
    """`EMA(x, 12)`, `MACD(x, 12, 26, 9).signal`: one incremental instance per slot, fed on each
    close of `root`.

    `source` is a FieldRef, another IndicatorCall (`EMA(RSI(btc.close, 14), 5)`) or, for candle
    indicators, a CandleRef; `other` is the second series of CORREL and BETA (its latest value
    is read when `root` closes). `root` is the stream whose closes update it. `params` are every
    parameter in TA-Lib's order, defaults filled in (empty when `period` is the only one);
    `output` the field of a multi-output indicator.
    """

    slot: int
    name: IndicatorName
    source: CompiledExpr | CandleRef
    period: int
    root: str
    params: tuple[float, ...] = ()
    output: str | None = None
    matype: str | None = None
    anchor: str = "1d"
    other: CompiledExpr | None = None

    def args(self) -> Args:
        """The resolved arguments the engine builds the instance from."""
        spec = INDICATORS[self.name]
        params = self.params
        if not params:
            defaults = tuple(param.default for param in spec.params)
            params = (float(self.period), *defaults[1:])
        return Args(params, self.matype or spec.matype or "SMA", self.anchor)


@dataclass(frozen=True, slots=True)
class MathCall:
    """`ABS(x)`, `MIN(a, b, ...)`, `SQRT(x)`, ...: no state; undefined if an argument is, or
    outside the function's domain (logged once)."""

    func: str
    args: tuple[CompiledExpr, ...]


@dataclass(frozen=True, slots=True)
class Neg:
    operand: CompiledExpr


@dataclass(frozen=True, slots=True)
class Not:
    operand: CompiledExpr


@dataclass(frozen=True, slots=True)
class Arith:
    """Decimal arithmetic (16 significant digits, half-even); x / 0 is undefined."""

    op: Literal["+", "-", "*", "/"]
    left: CompiledExpr
    right: CompiledExpr


@dataclass(frozen=True, slots=True)
class Compare:
    op: Literal[">", "<", ">=", "<=", "==", "!="]
    left: CompiledExpr
    right: CompiledExpr


@dataclass(frozen=True, slots=True)
class Logic:
    """AND / OR, strict in both operands (no short-circuit), undefined if either is."""

    op: Literal["AND", "OR"]
    left: CompiledExpr
    right: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledBetween:
    """`value BETWEEN low AND high`, inclusive."""

    value: CompiledExpr
    low: CompiledExpr
    high: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledInList:
    """`value IN [a, b, ...]`: numeric equality with any member."""

    value: CompiledExpr
    options: tuple[CompiledExpr, ...]


@dataclass(frozen=True, slots=True)
class CompiledCrosses:
    """`left CROSSES ABOVE|BELOW right`; state (was left > right last time) lives in `slot`."""

    slot: int
    direction: Literal["ABOVE", "BELOW"]
    left: CompiledExpr
    right: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledCase:
    """`CASE WHEN c THEN v ... ELSE d END`: the first exactly-true branch, else `default`."""

    branches: tuple[tuple[CompiledExpr, CompiledExpr], ...]
    default: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledAggregate:
    """`MAX|MIN|MEAN|SUM(operand) SINCE T-N` (window=N) or `SINCE OPEN` (window=None).

    Updated on each close of `stream` (the rule's stream). T-N covers the last N values including
    the current one (undefined until N exist). SINCE OPEN covers the closes since the position in
    `stream`'s symbol opened; reset on open, close and flip; undefined while flat.
    """

    slot: int
    func: Literal["MAX", "MIN", "MEAN", "SUM"]
    operand: CompiledExpr
    window: int | None
    stream: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """`name@BUY|SELL|OPEN|T-N`: a LET's value captured at a moment, per slot.

    `value` is the LET's expanded expression, `stream` the rule's stream.
    - BUY / SELL: captured when a BUY / SELL rule whose action names `stream` fires.
    - OPEN: captured when the position in `stream`'s symbol opens; cleared when flat.
    - T: its value `lag` closes of `stream` ago (pushed on each close, before rules run).
    """

    slot: int
    let: str
    value: CompiledExpr
    kind: Literal["BUY", "SELL", "OPEN", "T"]
    lag: int
    stream: str


@dataclass(frozen=True, slots=True)
class AccountRef:
    """`ACCOUNT.equity` and friends, for the whole strategy."""

    field: AccountField


@dataclass(frozen=True, slots=True)
class PositionRef:
    """`POSITION.a`: signed quantity held in a's (broker, symbol); 0 when flat."""

    stream: str


@dataclass(frozen=True, slots=True)
class PositionAvgPriceRef:
    """`POSITION_AVG_PRICE.a`: average entry price of a's position; 0 when flat."""

    stream: str


CompiledExpr: TypeAlias = (
    Const
    | FieldRef
    | IndicatorCall
    | MathCall
    | Neg
    | Not
    | Arith
    | Compare
    | Logic
    | CompiledBetween
    | CompiledInList
    | CompiledCrosses
    | CompiledCase
    | CompiledAggregate
    | Snapshot
    | AccountRef
    | PositionRef
    | PositionAvgPriceRef
)
