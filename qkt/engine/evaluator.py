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

This module compiles an expression to a tree of closures once, then only calls it. The state
expressions read and the tree-walking meaning of every node (which the closures agree with, and
which runs the node types that have no closure) are in `Interpreter` (interpreter.py), the
`Evaluator`'s base.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from decimal import Decimal, DecimalException
from typing import Any, Final

from qkt.dsl.program import (
    Arith,
    Compare,
    CompiledCrosses,
    CompiledExpr,
    Const,
    FieldRef,
    IndicatorCall,
    Logic,
    Not,
    PositionRef,
)
from qkt.engine.interpreter import _ARITH, _COMPARE, Interpreter
from qkt.engine.ordering import GAP, float_reader, settled
from qkt.engine.values import UNDEFINED, Value


class Evaluator(Interpreter):
    """Evaluates expressions against the strategy's current candles, slots and portfolio."""

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
