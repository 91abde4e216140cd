"""Lowering calls: an indicator call becomes an `IndicatorCall` with every parameter resolved
(TA-Lib's defaults filled in, MATYPE and ANCHOR read), a math function a `MathCall`. Also the
`Scope` every lowering step carries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from qkt.dsl import nodes
from qkt.dsl import program as ir
from qkt.dsl.catalog import FUNCTIONS, INDICATORS
from qkt.dsl.nodes import Span


@dataclass(frozen=True, slots=True)
class Scope:
    """How names resolve while lowering one expression."""

    stream: str  # the rule's stream: aggregates and snapshots follow its closes
    loop: tuple[str, str] | None  # FOR EACH (variable, alias)
    symbol: str | None  # what `SYMBOL` stands for (in DEFAULTS: the action's stream)
    origin: Span  # where to point if the expansion is too large

    def alias(self, name: str) -> str:
        if self.loop is not None and name == self.loop[0]:
            return self.loop[1]
        return name


class CallLowering(ABC):
    """The compiler's call half; the compiler provides LETs, slots and expression lowering."""

    lets: dict[str, nodes.Expr]
    # One slot per distinct call: a LET used twice, or the same `EMA(btc.close, 12)` written in
    # two rules, is one instance fed once. The key is the call without its slot; a call whose
    # inputs hold a stateful node of their own (a slot) never matches another.
    calls: dict[tuple[object, ...], ir.IndicatorCall]

    @abstractmethod
    def expr(self, expr: nodes.Expr, scope: Scope, depth: int) -> ir.CompiledExpr: ...

    @abstractmethod
    def slot(self) -> int: ...

    def call(self, call: nodes.Call, scope: Scope, depth: int) -> ir.CompiledExpr:
        if call.name in FUNCTIONS:
            args = tuple(self.expr(arg, scope, depth) for arg in call.args)
            return ir.MathCall(call.name, args)
        return self.indicator(call, scope, depth)

    def indicator(self, call: nodes.Call, scope: Scope, depth: int) -> ir.IndicatorCall:
        spec = INDICATORS[call.name]
        inputs = 2 if spec.input == "two series" else 1
        source = self.source(call.args[0], call.name, scope, depth)
        other = self.expr(call.args[1], scope, depth) if inputs == 2 else None
        match source:
            case ir.CandleRef() | ir.FieldRef():
                root = source.stream
            case ir.IndicatorCall():
                root = source.root
            case _:
                raise ValueError(f"{call.name} source reached the compiler unchecked")
        given = [self.number(arg, call.name) for arg in call.args[inputs:]]
        params = tuple(given) + tuple(p.default for p in spec.params[len(given) :])
        keywords = {keyword.name: keyword.value for keyword in call.keywords}
        period_alone = len(spec.params) == 1 and spec.params[0].whole  # `period` says it all
        period = int(params[0]) if params and spec.params[0].whole else 0
        matype, anchor = keywords.get("MATYPE", spec.matype), keywords.get("ANCHOR", "1d")
        params = () if period_alone else params
        identity = (call.name, source, period, root, params, call.field, matype, anchor, other)
        known = self.calls.get(identity)
        if known is not None:
            return known
        lowered = self.calls[identity] = ir.IndicatorCall(
            slot=self.slot(),
            name=call.name,
            source=source,
            period=period,
            root=root,
            params=params,
            output=call.field,
            matype=matype,
            anchor=anchor,
            other=other,
        )
        return lowered

    def source(
        self, node: nodes.Expr, name: str, scope: Scope, depth: int
    ) -> ir.CompiledExpr | ir.CandleRef:
        if isinstance(node, nodes.SymbolRef) and scope.symbol is not None:
            return ir.CandleRef(scope.symbol)
        if isinstance(node, nodes.Field) and node.field == "candle":
            return ir.CandleRef(scope.alias(node.alias))
        return self.expr(node, scope, depth)

    def number(self, node: nodes.Expr, name: str) -> float:
        """A parameter: a number, `-number` or a LET that is one (the checker made sure)."""
        while isinstance(node, nodes.Name):
            node = self.lets[node.name]
        if isinstance(node, nodes.Unary) and isinstance(node.operand, nodes.Num):
            return -float(node.operand.value)
        if not isinstance(node, nodes.Num):
            raise ValueError(f"{name} parameter reached the compiler unchecked")
        return float(node.value)
