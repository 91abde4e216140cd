"""The one table of indicators and functions: the checker, the compiler, the engine's factory,
`qkt check --list-indicators` and docs/indicators.md all read it, so they cannot drift.

Names, parameters (order and defaults) and outputs are TA-Lib's, with TA-Lib's MA-type
parameters left out of the positional list: where an indicator smooths with a moving average of
the user's choice, that choice is the keyword `MATYPE=EMA` (default: TA-Lib's). The entries live
in table_prices.py and table_ranges.py; their shapes in specs.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from qkt.dsl.specs import (
    ANCHORS,
    MA_TYPES,
    MAX_HISTORY,
    Args,
    Param,
    Spec,
    ma_lookback,
)
from qkt.dsl.table_prices import PRICE_SPECS
from qkt.dsl.table_ranges import RANGE_SPECS

__all__ = [
    "ANCHORS",
    "FUNCTIONS",
    "INDICATORS",
    "MAX_HISTORY",
    "MA_TYPES",
    "Args",
    "Function",
    "Param",
    "Spec",
    "history_of",
    "ma_lookback",
]

INDICATORS: Final[dict[str, Spec]] = {spec.name: spec for spec in (*PRICE_SPECS, *RANGE_SPECS)}


@dataclass(frozen=True, slots=True)
class Function:
    """A math function: exact Decimal where the result is rational."""

    name: str
    arity: tuple[int, int | None]  # at least, at most (None: any number)
    summary: str


FUNCTIONS: Final[dict[str, Function]] = {
    f.name: f
    for f in (
        Function("ABS", (1, 1), "absolute value (exact)"),
        Function(
            "MIN",
            (2, None),
            "smallest of two or more values (exact); MIN(x) SINCE ... is the aggregate",
        ),
        Function(
            "MAX",
            (2, None),
            "largest of two or more values (exact); MAX(x) SINCE ... is the aggregate",
        ),
        Function("SQRT", (1, 1), "square root to 16 digits; undefined below 0"),
        Function("LN", (1, 1), "natural logarithm to 16 digits; undefined at 0 and below"),
        Function("EXP", (1, 1), "e to the power x, to 16 digits; undefined if it overflows"),
        Function(
            "ROUND", (1, 2), "ROUND(x, digits): to that many decimals (default 0), half to even"
        ),
        Function("FLOOR", (1, 1), "largest whole number ≤ x (exact)"),
        Function("CEIL", (1, 1), "smallest whole number ≥ x (exact)"),
        Function("SIGN", (1, 1), "−1, 0 or 1"),
    )
}


def history_of(spec: Spec, args: Args, timeframe_ms: int) -> int:
    """Inputs before a value no longer depends on where its history started (to 1e-9)."""
    if spec.name == "VWAP":
        anchor_ms = (7 if args.anchor == "1w" else 1) * 86_400_000
        return max(1, anchor_ms // max(1, timeframe_ms))
    return spec.lookback(args) + spec.settle(args)
