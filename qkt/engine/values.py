"""The values expressions produce: an exact `Decimal`, a `bool`, or `UNDEFINED` (one sentinel).

Indicators compute in binary floats (as TA-Lib does); `from_float` is the one place where such a
float becomes a value, rounded like every number of the language to 16 significant digits
(`qkt.money.CONTEXT`). That is far inside the 1e-9 agreement with TA-Lib, and it absorbs the
last-bit noise of float sums: in a market that stood still, SMA(close, 20) equals the close
instead of being one ulp above it, so `close > SMA(...)` is FALSE as a trader expects.
"""

from __future__ import annotations

import math
from decimal import Decimal
from enum import Enum
from typing import Final, TypeAlias

from qkt.money import CONTEXT


class Undefined(Enum):
    """The type of `UNDEFINED`: no value yet (indicator not warm, no candle, x / 0, ...)."""

    UNDEFINED = "undefined"

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined.UNDEFINED

Value: TypeAlias = Decimal | bool | Undefined
# How a value is stored in exported state: Decimal as a string, bool as itself, UNDEFINED as None.
JsonValue: TypeAlias = str | bool | None


def from_float(number: float | None) -> Decimal | Undefined:
    """An indicator's float as a 16-digit Decimal; None, NaN and infinities are undefined."""
    if number is None or not math.isfinite(number):
        return UNDEFINED
    return CONTEXT.create_decimal_from_float(number)


def to_price(value: Decimal) -> Decimal:
    """Round a computed price or quantity to the money context (16 significant digits)."""
    return CONTEXT.plus(value)


def value_to_json(value: Value) -> JsonValue:
    """The exported form of a value (exact decimal string, bool or None)."""
    if value is UNDEFINED:
        return None
    if isinstance(value, bool):
        return value
    return str(value)


def value_from_json(data: JsonValue) -> Value:
    """The inverse of `value_to_json`."""
    if data is None:
        return UNDEFINED
    if isinstance(data, bool):
        return data
    return Decimal(data)
