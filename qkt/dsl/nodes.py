"""The syntax tree the parser builds: what was written, where, before any name is resolved.

Every node carries the `Span` where it starts, so that the checker can point at it. The compiler
turns a checked tree into a `qkt.dsl.program.Program`.

This module holds the declarations and the whole file (`Strategy`). The expression nodes and
`Span` are in `expr_nodes.py`, the action nodes in `action_nodes.py`; every one of them is
importable from here too (`nodes.Call`, `nodes.Order`, `from qkt.dsl.nodes import Span`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qkt.dsl.action_nodes import Action as Action
from qkt.dsl.action_nodes import BracketChild as BracketChild
from qkt.dsl.action_nodes import BracketOpt as BracketOpt
from qkt.dsl.action_nodes import Cancel as Cancel
from qkt.dsl.action_nodes import CancelAll as CancelAll
from qkt.dsl.action_nodes import Close as Close
from qkt.dsl.action_nodes import CloseAll as CloseAll
from qkt.dsl.action_nodes import Exit as Exit
from qkt.dsl.action_nodes import Limit as Limit
from qkt.dsl.action_nodes import Log as Log
from qkt.dsl.action_nodes import Market as Market
from qkt.dsl.action_nodes import OcoChild as OcoChild
from qkt.dsl.action_nodes import OcoOpt as OcoOpt
from qkt.dsl.action_nodes import Option as Option
from qkt.dsl.action_nodes import Order as Order
from qkt.dsl.action_nodes import OrderType as OrderType
from qkt.dsl.action_nodes import OrderTypeOpt as OrderTypeOpt
from qkt.dsl.action_nodes import SizePct as SizePct
from qkt.dsl.action_nodes import SizePos as SizePos
from qkt.dsl.action_nodes import SizeQty as SizeQty
from qkt.dsl.action_nodes import SizeRisk as SizeRisk
from qkt.dsl.action_nodes import SizeUsd as SizeUsd
from qkt.dsl.action_nodes import Sizing as Sizing
from qkt.dsl.action_nodes import SizingOpt as SizingOpt
from qkt.dsl.action_nodes import Stop as Stop
from qkt.dsl.action_nodes import Tif as Tif
from qkt.dsl.action_nodes import TifOpt as TifOpt
from qkt.dsl.action_nodes import Trailing as Trailing
from qkt.dsl.expr_nodes import Accessor as Accessor
from qkt.dsl.expr_nodes import Aggregate as Aggregate
from qkt.dsl.expr_nodes import Between as Between
from qkt.dsl.expr_nodes import Binary as Binary
from qkt.dsl.expr_nodes import Bool as Bool
from qkt.dsl.expr_nodes import Call as Call
from qkt.dsl.expr_nodes import Case as Case
from qkt.dsl.expr_nodes import Crosses as Crosses
from qkt.dsl.expr_nodes import Expr as Expr
from qkt.dsl.expr_nodes import Field as Field
from qkt.dsl.expr_nodes import InList as InList
from qkt.dsl.expr_nodes import Keyword as Keyword
from qkt.dsl.expr_nodes import Name as Name
from qkt.dsl.expr_nodes import Num as Num
from qkt.dsl.expr_nodes import Snap as Snap
from qkt.dsl.expr_nodes import Span as Span
from qkt.dsl.expr_nodes import SymbolRef as SymbolRef
from qkt.dsl.expr_nodes import Unary as Unary
from qkt.dsl.expr_nodes import children as children
from qkt.dsl.expr_nodes import depth as depth

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
