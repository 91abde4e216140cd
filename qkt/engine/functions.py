"""The math functions of the language on exact Decimals (dsl.md "Functions").

ABS, MIN, MAX, FLOOR, CEIL, SIGN and ROUND are exact; SQRT, LN and EXP are rounded to the
language's 16 significant digits (`qkt.money.CONTEXT`). Outside a function's domain (SQRT of a
negative, LN of 0 or less, an EXP that overflows) the value is undefined and `DomainError` says
why, for the evaluator to log once.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, DecimalException

from qkt.money import CONTEXT

MAX_DIGITS = 16


class DomainError(ValueError):
    """The arguments are outside the function's domain: the value is undefined."""


def apply(func: str, args: list[Decimal]) -> Decimal:
    """`func` of `args` (the checker made sure of the name and the count)."""
    x = args[0]
    try:
        match func:
            case "ABS":
                return abs(x)
            case "MIN":
                return min(args)
            case "MAX":
                return max(args)
            case "FLOOR":
                return x.to_integral_value(rounding=ROUND_FLOOR)
            case "CEIL":
                return x.to_integral_value(rounding=ROUND_CEILING)
            case "SIGN":
                return Decimal((x > 0) - (x < 0))
            case "ROUND":
                return _round(x, args[1] if len(args) > 1 else Decimal(0))
            case "SQRT":
                if x < 0:
                    raise DomainError("SQRT of a negative number is undefined")
                return CONTEXT.sqrt(x)
            case "LN":
                if x <= 0:
                    raise DomainError("LN of 0 or a negative number is undefined")
                return CONTEXT.ln(x)
            case "EXP":
                return CONTEXT.exp(x)
    except DecimalException as error:
        raise DomainError(f"{func} is undefined here ({type(error).__name__})") from None
    raise ValueError(f"unknown function {func!r}")


def _round(x: Decimal, digits: Decimal) -> Decimal:
    if digits != digits.to_integral_value() or not -MAX_DIGITS <= digits <= MAX_DIGITS:
        raise DomainError(
            f"ROUND's digits must be a whole number from -{MAX_DIGITS} to {MAX_DIGITS}"
        )
    return x.quantize(Decimal(1).scaleb(-int(digits)), rounding=ROUND_HALF_EVEN)
