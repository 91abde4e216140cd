"""`Interpreter`: the evaluator's state, and the meaning of every expression node by walking the
tree (`_interpret`), the reference that `Evaluator`'s compiled closures (evaluator.py) must agree
with.

It is its own module because the two halves change for different reasons: the meaning (dsl.md
"Values", see evaluator.py's docstring) lives here once, for every node type; the closures are
a speed-up for some of them, and a node type without one runs `_interpret` (only slower).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal, DecimalException
from typing import Final

from qkt.dsl.program import (
    AccountRef,
    Arith,
    Compare,
    CompiledAggregate,
    CompiledBetween,
    CompiledCase,
    CompiledCrosses,
    CompiledExpr,
    CompiledInList,
    Const,
    FieldRef,
    IndicatorCall,
    Logic,
    MathCall,
    Neg,
    Not,
    PositionAvgPriceRef,
    PositionRef,
    Snapshot,
)
from qkt.engine import functions
from qkt.engine.events import EventBuffer
from qkt.engine.plan import Plan
from qkt.engine.portfolio import Portfolio
from qkt.engine.slots import SlotTable
from qkt.engine.values import UNDEFINED, Undefined, Value
from qkt.market.models import Candle
from qkt.money import CONTEXT

_COMPARE: Final[dict[str, Callable[[Decimal, Decimal], bool]]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITH: Final[dict[str, Callable[[Decimal, Decimal], Decimal]]] = {
    "+": CONTEXT.add,
    "-": CONTEXT.subtract,
    "*": CONTEXT.multiply,
    "/": CONTEXT.divide,
}


class Interpreter:
    """The state expressions are evaluated against, and the tree-walking meaning of each node:
    the base of `Evaluator`, which compiles expressions to closures and runs through here the
    node types it has no closure for."""

    # `Evaluator.value`: an expression's value now, through its compiled closure.
    value: Callable[[CompiledExpr], Value]

    def __init__(
        self,
        plan: Plan,
        slots: SlotTable,
        candles: dict[str, Candle],
        portfolio: Portfolio,
        events: EventBuffer,
    ) -> None:
        self._plan = plan
        self._slots = slots
        self._candles = candles
        self._portfolio = portfolio
        self._events = events
        # Who is evaluating, for "logged once": a rule's index, or a slot outside rules.
        self.rule: int | None = None
        self.scope = "rule"
        self._code: dict[int, Callable[[], Value]] = {}  # id(expr) -> its compiled closure
        self._keep: list[CompiledExpr] = []

    def is_true(self, expr: CompiledExpr) -> bool:
        """A rule's test: the condition is exactly TRUE (undefined and FALSE are not)."""
        return self.value(expr) is True

    def number(self, expr: CompiledExpr) -> Decimal | Undefined:
        """A numeric value (a bool here is undefined)."""
        value = self.value(expr)
        return value if isinstance(value, Decimal) else UNDEFINED

    def _interpret(self, expr: CompiledExpr) -> Value:
        """The value of `expr` by walking the tree: the reference meaning of every node."""
        match expr:
            case Const():
                return expr.value
            case FieldRef():
                candle = self._candles.get(expr.stream)
                return UNDEFINED if candle is None else getattr(candle, expr.field)
            case IndicatorCall():
                return self._slots.indicators[expr.slot].value
            case MathCall():
                return self._function(expr)
            case Compare():
                return self._compare(expr)
            case Logic():
                left, right = self._bool(expr.left), self._bool(expr.right)
                if left is UNDEFINED or right is UNDEFINED:
                    return UNDEFINED
                return (left and right) if expr.op == "AND" else (left or right)
            case Arith():
                return self._arith(expr)
            case Not():
                operand = self._bool(expr.operand)
                return UNDEFINED if operand is UNDEFINED else not operand
            case Neg():
                number = self.number(expr.operand)
                return UNDEFINED if number is UNDEFINED else CONTEXT.minus(number)
            case CompiledCrosses():
                a, b = self.value(expr.left), self.value(expr.right)
                return self._slots.crosses[expr.slot].step(a, b, expr.direction)
            case CompiledBetween():
                value, low, high = (self.number(e) for e in (expr.value, expr.low, expr.high))
                if value is UNDEFINED or low is UNDEFINED or high is UNDEFINED:
                    return UNDEFINED
                return low <= value <= high
            case CompiledInList():
                value = self.number(expr.value)
                options = [self.number(option) for option in expr.options]
                if value is UNDEFINED or any(option is UNDEFINED for option in options):
                    return UNDEFINED
                return any(value == option for option in options)
            case CompiledCase():
                for condition, result in expr.branches:
                    if self.value(condition) is True:
                        return self.value(result)
                return self.value(expr.default)
            case CompiledAggregate():
                return self._aggregate(expr)
            case Snapshot():
                return self._snapshot(expr)
            case AccountRef():
                return self._account(expr)
            case PositionRef():
                return self._portfolio.position(self._plan.instruments[expr.stream])
            case PositionAvgPriceRef():
                return self._portfolio.avg_price(self._plan.instruments[expr.stream])
        raise TypeError(f"not an expression: {expr!r}")

    def _bool(self, expr: CompiledExpr) -> bool | Undefined:
        value = self.value(expr)
        return value if isinstance(value, bool) else UNDEFINED

    def _compare(self, expr: Compare) -> Value:
        left, right = self.value(expr.left), self.value(expr.right)
        if isinstance(left, Decimal) and isinstance(right, Decimal):
            return _COMPARE[expr.op](left, right)
        if isinstance(left, bool) and isinstance(right, bool) and expr.op in ("==", "!="):
            return (left == right) if expr.op == "==" else (left != right)
        return UNDEFINED

    def _arith(self, expr: Arith) -> Value:
        left, right = self.number(expr.left), self.number(expr.right)
        if left is UNDEFINED or right is UNDEFINED:
            return UNDEFINED
        if expr.op == "/" and right == 0:
            self._warn("division by zero", "division by zero: the value is undefined")
            return UNDEFINED
        try:
            return _ARITH[expr.op](left, right)
        except DecimalException as error:
            self._warn("arithmetic", f"arithmetic error ({type(error).__name__}): undefined")
            return UNDEFINED

    def _function(self, expr: MathCall) -> Value:
        args = [self.number(arg) for arg in expr.args]
        numbers = [arg for arg in args if isinstance(arg, Decimal)]
        if len(numbers) != len(args):
            return UNDEFINED
        try:
            return functions.apply(expr.func, numbers)
        except functions.DomainError as error:
            self._warn(expr.func, f"{error}: the value is undefined")
            return UNDEFINED

    def _aggregate(self, expr: CompiledAggregate) -> Value:
        if expr.window is not None:
            return self._slots.windows[expr.slot].result(expr.func)
        if self._portfolio.position(self._plan.instruments[expr.stream]) == 0:
            return UNDEFINED
        return self._slots.since_open[expr.slot].result(expr.func)

    def _snapshot(self, expr: Snapshot) -> Value:
        if expr.kind == "T":
            return self._slots.lags[expr.slot].value
        if expr.kind == "OPEN":
            if self._portfolio.position(self._plan.instruments[expr.stream]) == 0:
                return UNDEFINED
        return self._slots.captured[expr.slot]

    def _account(self, expr: AccountRef) -> Value:
        portfolio = self._portfolio
        if expr.field == "equity":
            return portfolio.equity
        if expr.field == "balance":
            return portfolio.balance
        if expr.field == "realized_pnl":
            return portfolio.realized
        if expr.field == "unrealized_pnl":
            return portfolio.unrealized
        return CONTEXT.add(portfolio.realized, portfolio.unrealized)

    def _warn(self, key: str, message: str) -> None:
        self._events.warn_once(f"{self.scope}:{key}", message, rule=self.rule)
