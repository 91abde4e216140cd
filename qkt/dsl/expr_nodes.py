"""The expression nodes of the syntax tree, and `Span`, the position every node carries.

Its own module: expressions are the largest family of nodes, and the one the actions and
declarations are built on. `qkt.dsl.nodes` re-exports every name (`nodes.Call`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class Span:
    """Where a construct starts in the source (1-based)."""

    line: int
    col: int


# ---------------------------------------------------------------------------------------------
# Expressions.


@dataclass(frozen=True, slots=True)
class Num:
    span: Span
    value: Decimal


@dataclass(frozen=True, slots=True)
class Bool:
    span: Span
    value: bool


@dataclass(frozen=True, slots=True)
class Name:
    """A bare name: a LET (or a mistake: an alias, a loop variable, `open`, `close`)."""

    span: Span
    name: str


@dataclass(frozen=True, slots=True)
class Field:
    """`alias.field`, including `alias.candle` (ATR's argument)."""

    span: Span
    alias: str
    field: str
    field_span: Span


@dataclass(frozen=True, slots=True)
class Keyword:
    """`MATYPE=EMA` or `ANCHOR=1w` inside a call: a name and a word (not an expression)."""

    span: Span
    name: str
    value: str
    value_span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """`NAME(args)` or `NAME(args).field`: an indicator or a math function; the checker knows
    which names exist (qkt.dsl.catalog)."""

    span: Span
    name: str
    args: tuple[Expr, ...]
    keywords: tuple[Keyword, ...] = ()
    field: str | None = None
    field_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Snap:
    """`name@BUY|SELL|OPEN|T-N`; `lag` is N for T (0 otherwise)."""

    span: Span
    name: str
    kind: Literal["BUY", "SELL", "OPEN", "T"]
    lag: int
    lag_span: Span


@dataclass(frozen=True, slots=True)
class Accessor:
    """`ACCOUNT.equity`, `POSITION.btc`, `POSITION_AVG_PRICE.btc`, `OPEN_ORDERS.btc`."""

    span: Span
    kind: Literal["ACCOUNT", "POSITION", "POSITION_AVG_PRICE", "OPEN_ORDERS"]
    name: str
    name_span: Span


@dataclass(frozen=True, slots=True)
class SymbolRef:
    """`SYMBOL`: in DEFAULTS, the stream of the action the defaults are merged into."""

    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    span: Span
    op: Literal["-", "NOT"]
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic, comparison, AND / OR; `span` is where the left operand starts."""

    span: Span
    op: Literal["+", "-", "*", "/", ">", "<", ">=", "<=", "==", "!=", "AND", "OR"]
    left: Expr
    right: Expr
    op_span: Span


@dataclass(frozen=True, slots=True)
class Between:
    span: Span
    value: Expr
    low: Expr
    high: Expr


@dataclass(frozen=True, slots=True)
class InList:
    span: Span
    value: Expr
    options: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Crosses:
    span: Span
    direction: Literal["ABOVE", "BELOW"]
    left: Expr
    right: Expr
    op_span: Span


@dataclass(frozen=True, slots=True)
class Case:
    span: Span
    branches: tuple[tuple[Expr, Expr], ...]
    default: Expr


@dataclass(frozen=True, slots=True)
class Aggregate:
    """`MAX|MIN|MEAN|SUM(x) SINCE T-N` (window N) or `SINCE OPEN` (window None)."""

    span: Span
    func: Literal["MAX", "MIN", "MEAN", "SUM"]
    operand: Expr
    window: int | None
    window_span: Span


Expr: TypeAlias = (
    Num
    | Bool
    | Name
    | Field
    | Call
    | Snap
    | Accessor
    | SymbolRef
    | Unary
    | Binary
    | Between
    | InList
    | Crosses
    | Case
    | Aggregate
)


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of `expr`, left to right."""
    match expr:
        case Call(args=args):
            return args
        case Unary(operand=operand) | Aggregate(operand=operand):
            return (operand,)
        case Binary(left=left, right=right) | Crosses(left=left, right=right):
            return (left, right)
        case Between(value=value, low=low, high=high):
            return (value, low, high)
        case InList(value=value, options=options):
            return (value, *options)
        case Case(branches=branches, default=default):
            return (*(part for branch in branches for part in branch), default)
        case _:
            return ()


def depth(expr: Expr) -> int:
    """How deep the tree under `expr` goes (1 for a leaf); iterative, so it cannot overflow."""
    deepest = 0
    stack = [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(node))
    return deepest
