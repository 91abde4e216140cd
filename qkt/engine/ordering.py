"""Ordering two language numbers from their floats, when the floats prove the Decimal answer.

A comparison in the language is exact on Decimals (evaluator.py), and an indicator's Decimal is
its float rounded to 16 significant digits (`values.from_float`). Converting both sides of every
`fast CROSSES ABOVE slow` to Decimal on every close is most of what such a rule costs, and
almost never changes the answer: rounding moves a number by at most 5e-16 of itself, and the
float of a candle field or a constant is within 1.2e-16 of its Decimal. So when the floats
differ by more than `GAP` of their magnitudes, the Decimals are ordered the same way and are not
equal; closer than that (or not finite, or undefined), the exact Decimal comparison decides.
The result is the exact comparison's, always; the floats only spare computing it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from qkt.dsl.program import CompiledExpr, Const, FieldRef, IndicatorCall
from qkt.engine.slots import SlotTable
from qkt.market.models import Candle

# Twice what is needed: |rounding| <= 5e-16 |x| per side, the float subtraction <= 1.2e-16 |a-b|.
GAP: Final = 2e-15

FloatReader = Callable[[], float | None]


def float_reader(
    expr: CompiledExpr, slots: SlotTable, candles: dict[str, Candle]
) -> FloatReader | None:
    """A reader of `expr`'s value as a float (None: undefined), if `expr` is a number whose
    reading has no side effect and whose float is within 5e-16 of it; else None."""
    if isinstance(expr, IndicatorCall):
        slot = slots.indicators[expr.slot]
        return lambda: slot.number
    if isinstance(expr, Const) and isinstance(expr.value, Decimal):
        number = float(expr.value)
        return lambda: number
    if isinstance(expr, FieldRef):
        stream, read = expr.stream, operator.attrgetter(expr.field)

        def field() -> float | None:
            candle = candles.get(stream)
            return None if candle is None else float(read(candle))

        return field
    return None


def settled(a: float | None, b: float | None) -> int:
    """1 if the numbers are surely a > b, -1 if surely a < b, 0 if the floats cannot tell."""
    if a is None or b is None:
        return 0
    difference = a - b
    margin = GAP * (abs(a) + abs(b))
    if difference > margin:  # NaN and infinities fail both tests
        return 1
    if -difference > margin:
        return -1
    return 0
