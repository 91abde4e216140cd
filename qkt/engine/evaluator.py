"""Evaluates program expressions to a Decimal, a bool or UNDEFINED (dsl.md "Values").

- Undefined spreads through every operator, `FALSE AND undefined` and `TRUE OR undefined`
  included; nothing short-circuits (every CROSSES in a condition sees every evaluation) except
  `CASE`, which evaluates branch conditions in order and only the value of the first exactly-TRUE
  one (an undefined condition is not true).
- `+ - * /` use `qkt.money.CONTEXT` (16 significant digits, half-even). `x / 0` is undefined and
  logged once per rule (once per slot outside rules); the engine keeps going.
- Comparisons of two numbers are exact; booleans compare with `==` and `!=` only. Anything else
  (a number against a bool, arithmetic on a bool) is undefined: the compiler should have refused it.
- `IN` is numeric equality with any member, `BETWEEN` is inclusive.
- Reading a stream gives its latest closed candle (undefined before one); an indicator, its value
  (or the output its field names) once warm; aggregates and snapshots, their slot's state
  (slots.py); a math function, functions.py's result (undefined outside its domain, logged once).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from decimal import Decimal, DecimalException
from typing import Any, Final

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
from qkt.engine.ordering import GAP, float_reader, settled
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


class Evaluator:
    """Evaluates expressions against the strategy's current candles, slots and portfolio."""

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

    def value(self, expr: CompiledExpr) -> Value:
        """The value of `expr` now (compiled to a closure on first use, then just called)."""
        code = self._code.get(id(expr))
        if code is None:
            code = self._compile(expr)
        return code()

    def compiled(self, expr: CompiledExpr) -> Callable[[], Value]:
        """`expr` compiled: calling it is `value(expr)`, without the lookup (the rules' own)."""
        return self._child(expr)

    # -- compiling: an expression becomes a tree of closures once, instead of being matched
    # node by node on every evaluation. `_BUILDERS` maps a node type to the method that builds
    # its closure; a node type without one runs `_interpret` (the same meaning, only slower),
    # so a new node type works as soon as `_interpret` knows it and gets faster with a builder.

    def _compile(self, expr: CompiledExpr) -> Callable[[], Value]:
        if len(self._code) > _MAX_COMPILED:  # only ad-hoc expressions (value_of) can pile up
            self._code.clear()
            self._keep.clear()
        build = _BUILDERS.get(type(expr))
        code = build(self, expr) if build is not None else functools.partial(self._interpret, expr)
        self._code[id(expr)] = code
        self._keep.append(expr)  # an id stays this expression's while it is alive
        return code

    def _build_const(self, expr: Const) -> Callable[[], Value]:
        value = expr.value
        return lambda: value

    def _build_field(self, expr: FieldRef) -> Callable[[], Value]:
        candles, stream, read = self._candles, expr.stream, operator.attrgetter(expr.field)

        def field() -> Value:
            candle = candles.get(stream)
            return UNDEFINED if candle is None else read(candle)

        return field

    def _build_indicator(self, expr: IndicatorCall) -> Callable[[], Value]:
        table, slot = self._slots.indicators, expr.slot
        return lambda: table[slot].value

    def _build_compare(self, expr: Compare) -> Callable[[], Value]:
        left, right, op = self._child(expr.left), self._child(expr.right), expr.op
        compare = _COMPARE[op]
        equal = op == "=="
        number = expr.right.value if isinstance(expr.right, Const) else None
        if isinstance(expr.left, PositionRef) and isinstance(number, Decimal):
            # `POSITION.btc == 0`: both sides are always Decimals.
            position = self._portfolio.position_reader(self._plan.instruments[expr.left.stream])
            return lambda: compare(position(), number)

        def comparison() -> Value:
            a, b = left(), right()
            if isinstance(a, Decimal) and isinstance(b, Decimal):
                return compare(a, b)
            if isinstance(a, bool) and isinstance(b, bool) and op in ("==", "!="):
                return (a == b) if equal else (a != b)
            return UNDEFINED

        float_a, float_b = self._float(expr.left), self._float(expr.right)
        if float_a is None or float_b is None or not _reads_indicator(expr):
            return comparison
        # Two plain numbers, one an indicator at least: the floats decide when they can
        # (ordering.py); the exact comparison otherwise. Neither side has a side effect to skip.
        when_apart = {sign: compare(Decimal(sign), Decimal(0)) for sign in (1, -1)}

        def float_first() -> Value:
            sign = settled(float_a(), float_b())
            return when_apart[sign] if sign else comparison()

        return float_first

    def _build_logic(self, expr: Logic) -> Callable[[], Value]:
        left, right = self._child(expr.left), self._child(expr.right)
        both = expr.op == "AND"

        # Both sides always run: a CROSSES must see every evaluation. The only bools are the
        # objects True and False, so `is` tests say "a bool" without calling isinstance.
        if both:

            def conjunction() -> Value:
                a, b = left(), right()
                if (a is True or a is False) and (b is True or b is False):
                    return a and b
                return UNDEFINED

            return conjunction

        def disjunction() -> Value:
            a, b = left(), right()
            if (a is True or a is False) and (b is True or b is False):
                return a or b
            return UNDEFINED

        return disjunction

    def _build_not(self, expr: Not) -> Callable[[], Value]:
        operand = self._child(expr.operand)

        def negation() -> Value:
            value = operand()
            return (not value) if isinstance(value, bool) else UNDEFINED

        return negation

    def _build_crosses(self, expr: CompiledCrosses) -> Callable[[], Value]:
        left, right = self._child(expr.left), self._child(expr.right)
        state, direction = self._slots.crosses[expr.slot], expr.direction
        float_a, float_b = self._float(expr.left), self._float(expr.right)
        if float_a is None or float_b is None or not _reads_indicator(expr):
            return lambda: state.step(left(), right(), direction)
        turn, step = state.turn, state.step
        if isinstance(expr.left, IndicatorCall) and isinstance(expr.right, IndicatorCall):
            slot_a, slot_b = (
                self._slots.indicators[expr.left.slot],
                self._slots.indicators[expr.right.slot],
            )

            rising = direction == "ABOVE"

            def indicators_cross() -> Value:
                # `fast CROSSES ABOVE slow` on every close: `settled` and `state.turn`, inlined.
                a, b = slot_a.number, slot_b.number
                if a is None or b is None:
                    return step(slot_a.value, slot_b.value, direction)
                difference, margin = a - b, GAP * (abs(a) + abs(b))
                if difference > margin:
                    above = True
                elif -difference > margin:
                    above = False
                else:
                    return step(slot_a.value, slot_b.value, direction)
                before = state.above
                state.above = above
                if before is None:
                    return UNDEFINED
                return (above and not before) if rising else (before and not above)

            return indicators_cross

        def float_first() -> Value:  # as in `_build_compare`
            sign = settled(float_a(), float_b())
            return turn(sign > 0, direction) if sign else step(left(), right(), direction)

        return float_first

    def _float(self, expr: CompiledExpr) -> Callable[[], float | None] | None:
        return float_reader(expr, self._slots, self._candles)

    def _build_arith(self, expr: Arith) -> Callable[[], Value]:
        left, right, op = self._child(expr.left), self._child(expr.right), expr.op
        apply = _ARITH[op]

        def arithmetic() -> Value:
            a, b = left(), right()
            if not isinstance(a, Decimal) or not isinstance(b, Decimal):
                return UNDEFINED
            if op == "/" and b == 0:
                self._warn("division by zero", "division by zero: the value is undefined")
                return UNDEFINED
            try:
                return apply(a, b)
            except DecimalException as error:
                self._warn("arithmetic", f"arithmetic error ({type(error).__name__}): undefined")
                return UNDEFINED

        return arithmetic

    def _build_position(self, expr: PositionRef) -> Callable[[], Value]:
        return self._portfolio.position_reader(self._plan.instruments[expr.stream])

    def _child(self, expr: CompiledExpr) -> Callable[[], Value]:
        code = self._code.get(id(expr))
        return code if code is not None else self._compile(expr)

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


_MAX_COMPILED: Final = 100_000


def _reads_indicator(expr: Compare | CompiledCrosses) -> bool:
    """Worth reading floats: a side is an indicator (a field or a constant is a Decimal already)."""
    return isinstance(expr.left, IndicatorCall) or isinstance(expr.right, IndicatorCall)


# Node type -> the Evaluator method that compiles it (see `Evaluator._compile`).
_BUILDERS: Final[dict[type, Callable[[Evaluator, Any], Callable[[], Value]]]] = {
    Const: Evaluator._build_const,
    FieldRef: Evaluator._build_field,
    IndicatorCall: Evaluator._build_indicator,
    Compare: Evaluator._build_compare,
    Logic: Evaluator._build_logic,
    Not: Evaluator._build_not,
    CompiledCrosses: Evaluator._build_crosses,
    Arith: Evaluator._build_arith,
    PositionRef: Evaluator._build_position,
}
