"""Money rules: exact decimals everywhere, 16 significant digits, half-even; no binary floats."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Final

# dsl.md: "Numbers are exact decimals (16 significant digits, half-even, for + - * /)".
# The context also makes invalid operations raise instead of returning NaN silently.
CONTEXT: Final = decimal.Context(
    prec=16,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
BPS: Final = Decimal(10_000)


def parse_decimal(text: str | int | Decimal) -> Decimal:
    """Parse an exact decimal; rejects floats, NaN and infinities with ValueError."""
    if isinstance(text, float):
        raise TypeError("money is never a binary float")
    try:
        value = Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite decimal number: {text!r}")
    return value


def plain(value: Decimal) -> str:
    """The decimal exactly as it is (`1.50` stays `1.50`), never in exponent form (`1E-7`).

    For values that travel on (wire frames, deploy arguments), where the sender's precision is
    part of the value; `to_str` is for figures qkt computed itself.
    """
    # str() gives the same digits and exponent, sooner (the hub writes five a candle), unless
    # it chose exponent form, which it marks with an E.
    text = str(value)
    return format(value, "f") if "E" in text else text


def to_str(value: Decimal) -> str:
    """Plain decimal string for JSON and logs: no exponent, no trailing zeros past the point."""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def quantize(value: Decimal, step: Decimal) -> Decimal:
    """Round `value` to a multiple of `step` (tick or lot size), half-even."""
    return (value / step).to_integral_value(rounding=decimal.ROUND_HALF_EVEN) * step
