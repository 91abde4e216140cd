"""The action nodes of the syntax tree: sizing, order types, TIF, exit levels, the options
of an action and the actions themselves (DEFAULTS reuses the pieces).

Its own module: what an order says, apart from the expressions it holds and from the
declarations that hold it. `qkt.dsl.nodes` re-exports every name (`nodes.Order`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from qkt.dsl.expr_nodes import Expr, Span

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
