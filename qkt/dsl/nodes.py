"""The syntax tree the parser builds: what was written, where, before any name is resolved.

Every node carries the `Span` where it starts, so that the checker can point at it. The compiler
turns a checked tree into a `qkt.dsl.program.Program`.
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


# ---------------------------------------------------------------------------------------------
# Sizing, order types, TIF, exits: the pieces of an action and of DEFAULTS.


@dataclass(frozen=True, slots=True)
class SizeQty:
    span: Span
    amount: Expr


@dataclass(frozen=True, slots=True)
class SizeUsd:
    span: Span
    amount: Expr


@dataclass(frozen=True, slots=True)
class SizePct:
    span: Span
    fraction: Expr
    base: Literal["EQUITY", "BALANCE"]


@dataclass(frozen=True, slots=True)
class SizeRisk:
    """`RISK f` or, with `cash`, `RISK $ x`; `span` is at RISK."""

    span: Span
    amount: Expr
    cash: bool


@dataclass(frozen=True, slots=True)
class SizePos:
    span: Span
    alias: str
    alias_span: Span


Sizing: TypeAlias = SizeQty | SizeUsd | SizePct | SizeRisk | SizePos


@dataclass(frozen=True, slots=True)
class Market:
    span: Span


@dataclass(frozen=True, slots=True)
class Limit:
    span: Span
    price: Expr


@dataclass(frozen=True, slots=True)
class Stop:
    span: Span
    stop: Expr
    limit: Expr | None


@dataclass(frozen=True, slots=True)
class Trailing:
    span: Span
    amount: Expr
    percent: bool


OrderType: TypeAlias = Market | Limit | Stop | Trailing


@dataclass(frozen=True, slots=True)
class Tif:
    """`GTC IOC FOK DAY`, or `GTD expr` (parsed, not yet supported)."""

    span: Span
    kind: Literal["GTC", "IOC", "FOK", "DAY", "GTD"]
    until: Expr | None


@dataclass(frozen=True, slots=True)
class Exit:
    """A bracket child's level: `AT|BY|PCT|RR value`; `span` is at the AT/BY/PCT/RR word."""

    span: Span
    kind: Literal["AT", "BY", "PCT", "RR"]
    value: Expr


# ---------------------------------------------------------------------------------------------
# Actions and their options.


@dataclass(frozen=True, slots=True)
class SizingOpt:
    span: Span
    sizing: Sizing


@dataclass(frozen=True, slots=True)
class OrderTypeOpt:
    span: Span
    order_type: OrderType


@dataclass(frozen=True, slots=True)
class TifOpt:
    span: Span
    tif: Tif


@dataclass(frozen=True, slots=True)
class BracketChild:
    span: Span
    which: Literal["STOP_LOSS", "TAKE_PROFIT"]
    exit: Exit


@dataclass(frozen=True, slots=True)
class BracketOpt:
    span: Span
    children: tuple[BracketChild, ...]


@dataclass(frozen=True, slots=True)
class OcoChild:
    span: Span
    which: Literal["STOP", "LIMIT"]
    price: Expr


@dataclass(frozen=True, slots=True)
class OcoOpt:
    span: Span
    children: tuple[OcoChild, ...]


Option: TypeAlias = SizingOpt | OrderTypeOpt | TifOpt | BracketOpt | OcoOpt


@dataclass(frozen=True, slots=True)
class Order:
    """`BUY alias options...` / `SELL alias options...`."""

    span: Span
    side: Literal["BUY", "SELL"]
    alias: str
    alias_span: Span
    options: tuple[Option, ...]


@dataclass(frozen=True, slots=True)
class Close:
    span: Span
    alias: str
    alias_span: Span


@dataclass(frozen=True, slots=True)
class CloseAll:
    span: Span


@dataclass(frozen=True, slots=True)
class Cancel:
    span: Span
    alias: str
    alias_span: Span


@dataclass(frozen=True, slots=True)
class CancelAll:
    span: Span


@dataclass(frozen=True, slots=True)
class Log:
    span: Span
    text: str


Action: TypeAlias = Order | Close | CloseAll | Cancel | CancelAll | Log


# ---------------------------------------------------------------------------------------------
# Declarations and the whole file.


@dataclass(frozen=True, slots=True)
class DefaultClause:
    """One `NAME = value` line of DEFAULTS; `span` is at NAME."""

    span: Span
    name: Literal["SIZING", "STOP_LOSS", "TAKE_PROFIT", "TIF", "ORDER_TYPE", "TRAILING"]
    value: Sizing | Exit | Tif | OrderType


@dataclass(frozen=True, slots=True)
class Stream:
    """`alias = BROKER:SYMBOL EVERY tf`; `timeframe` is the text of `<count><unit>`."""

    span: Span
    alias: str
    broker: str
    symbol: str
    timeframe: str
    timeframe_span: Span


@dataclass(frozen=True, slots=True)
class Let:
    span: Span
    name: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class Rule:
    """`WHEN condition THEN action`; `text` is its source with whitespace folded.

    `truncated` if junk followed the action (likely a misspelt option): what the action lacks
    is then not reported as missing.
    """

    span: Span
    condition: Expr
    action: Action
    text: str
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class AliasRef:
    span: Span
    name: str


@dataclass(frozen=True, slots=True)
class ForEach:
    """`FOR EACH var IN [aliases] DO rule`; `broken` if its header did not parse."""

    span: Span
    var: str
    var_span: Span
    aliases: tuple[AliasRef, ...]
    rule: Rule
    text: str
    broken: bool


@dataclass(frozen=True, slots=True)
class Strategy:
    """A parsed file. `broken` names were declared by LETs or streams that failed to parse:
    the checker does not report their uses (one mistake, one error)."""

    name: str
    version: int
    defaults: tuple[DefaultClause, ...]
    streams: tuple[Stream, ...]
    lets: tuple[Let, ...]
    rules: tuple[Rule | ForEach, ...]
    broken: frozenset[str]
    defaults_broken: bool
    warmup: int | None = None  # `WARMUP n` after the header: candles of history to ask for
