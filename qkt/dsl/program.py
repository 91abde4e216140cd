"""The compiled form of a `.qkt` file: what the engine runs. Plain frozen values, no I/O.

The compiler resolves everything the engine should not have to think about:
- aliases become `StreamDecl`s with a `CandleKey`; `price` becomes `close`;
- LETs are expanded in place (they are macros), `SYMBOL` in DEFAULTS becomes the action's stream;
- FOR EACH is expanded in place, in list order, one `CompiledRule` per alias;
- DEFAULTS are merged into every action (an action's own options win);
- every distinct indicator call (the same call written twice, or a LET used twice, is one) and
  every other stateful site (CROSSES, aggregate, snapshot) gets its own `slot`, a small int
  unique in the program, so the engine keeps one state object per slot.

Semantics (dsl.md, "Meaning") that the engine implements on these nodes:
- `Logic`, `Compare`, `Arith`, ... are strict: undefined spreads, nothing short-circuits
  (`FALSE AND undefined` is undefined), so every CROSSES/aggregate in a condition sees every
  evaluation. Only `CompiledCase` is lazy.
- A rule is evaluated when a candle of `CompiledRule.stream` closes; it fires only if its
  condition is exactly TRUE.

The expression nodes are in `compiled_exprs.py`, the action nodes in `compiled_actions.py`;
this module holds the program itself (`Program`, its streams and rules) and re-exports every
node, so that `qkt.dsl.program` stays the one place to import the IR from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from qkt.dsl.compiled_actions import Bracket as Bracket
from qkt.dsl.compiled_actions import CloseAction as CloseAction
from qkt.dsl.compiled_actions import CloseAllAction as CloseAllAction
from qkt.dsl.compiled_actions import CompiledAction as CompiledAction
from qkt.dsl.compiled_actions import CompiledOrderType as CompiledOrderType
from qkt.dsl.compiled_actions import CompiledSizeRisk as CompiledSizeRisk
from qkt.dsl.compiled_actions import CompiledSizing as CompiledSizing
from qkt.dsl.compiled_actions import ExitLevel as ExitLevel
from qkt.dsl.compiled_actions import LimitOrder as LimitOrder
from qkt.dsl.compiled_actions import LogAction as LogAction
from qkt.dsl.compiled_actions import MarketOrder as MarketOrder
from qkt.dsl.compiled_actions import Oco as Oco
from qkt.dsl.compiled_actions import OrderAction as OrderAction
from qkt.dsl.compiled_actions import SizeNotional as SizeNotional
from qkt.dsl.compiled_actions import SizePercentOf as SizePercentOf
from qkt.dsl.compiled_actions import SizePosition as SizePosition
from qkt.dsl.compiled_actions import SizeQuantity as SizeQuantity
from qkt.dsl.compiled_actions import StopOrder as StopOrder
from qkt.dsl.compiled_actions import TimeInForce as TimeInForce
from qkt.dsl.compiled_actions import TrailingOrder as TrailingOrder
from qkt.dsl.compiled_exprs import AccountField as AccountField
from qkt.dsl.compiled_exprs import AccountRef as AccountRef
from qkt.dsl.compiled_exprs import Arith as Arith
from qkt.dsl.compiled_exprs import CandleRef as CandleRef
from qkt.dsl.compiled_exprs import Compare as Compare
from qkt.dsl.compiled_exprs import CompiledAggregate as CompiledAggregate
from qkt.dsl.compiled_exprs import CompiledBetween as CompiledBetween
from qkt.dsl.compiled_exprs import CompiledCase as CompiledCase
from qkt.dsl.compiled_exprs import CompiledCrosses as CompiledCrosses
from qkt.dsl.compiled_exprs import CompiledExpr as CompiledExpr
from qkt.dsl.compiled_exprs import CompiledInList as CompiledInList
from qkt.dsl.compiled_exprs import Const as Const
from qkt.dsl.compiled_exprs import FieldName as FieldName
from qkt.dsl.compiled_exprs import FieldRef as FieldRef
from qkt.dsl.compiled_exprs import IndicatorCall as IndicatorCall
from qkt.dsl.compiled_exprs import IndicatorName as IndicatorName
from qkt.dsl.compiled_exprs import Logic as Logic
from qkt.dsl.compiled_exprs import MathCall as MathCall
from qkt.dsl.compiled_exprs import Neg as Neg
from qkt.dsl.compiled_exprs import Not as Not
from qkt.dsl.compiled_exprs import PositionAvgPriceRef as PositionAvgPriceRef
from qkt.dsl.compiled_exprs import PositionRef as PositionRef
from qkt.dsl.compiled_exprs import Snapshot as Snapshot
from qkt.dsl.nodes import Span
from qkt.market.models import CandleKey

# ---------------------------------------------------------------------------------------------
# The program.


@dataclass(frozen=True, slots=True)
class StreamDecl:
    """`alias = BROKER:SYMBOL EVERY tf`."""

    alias: str
    key: CandleKey
    span: Span


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One evaluated rule (FOR EACH already expanded); `index` is its position in file order."""

    index: int
    stream: str
    condition: CompiledExpr
    action: CompiledAction
    span: Span
    text: str  # the rule's source, whitespace folded, for logs and signals


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled strategy."""

    name: str
    version: int
    path: str
    streams: tuple[StreamDecl, ...]
    rules: tuple[CompiledRule, ...]
    slot_count: int
    warmup: int | None = None  # `WARMUP n`: at least n candles of history per key

    def history_needed(self) -> dict[CandleKey, int]:
        """Closed candles of history each key needs before its first live candle for every
        indicator, lag, aggregate and CROSSES to be warm and settled (values equal to those of
        a run over a long history, to 1e-9): see qkt.dsl.history."""
        from qkt.dsl.history import history_needed  # history walks these classes: import late

        return history_needed(self)

    def stream(self, alias: str) -> StreamDecl:
        """The declaration of `alias` (the compiler guarantees it exists)."""
        for decl in self.streams:
            if decl.alias == alias:
                return decl
        raise KeyError(alias)

    def with_broker(self, broker: str) -> Program:
        """The same program with every stream on `broker` (`--sim` puts everything on SIM).

        Rewriting the keys (not just the feed) keeps a simulated deployment from sharing, and
        ref-counting, the real market's key in a daemon's hub.
        """
        streams = tuple(
            replace(decl, key=replace(decl.key, broker=broker)) for decl in self.streams
        )
        return replace(self, streams=streams)

    @property
    def keys(self) -> tuple[CandleKey, ...]:
        """Distinct candle keys, in declaration order: what a worker subscribes to."""
        return tuple(dict.fromkeys(decl.key for decl in self.streams))
