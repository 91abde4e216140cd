"""Math functions from .qkt text to values: exact where the result is rational, 16 digits where
not, undefined (logged once) outside their domain."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qkt.dsl import compile_source
from qkt.engine.functions import DomainError, apply
from qkt.engine.values import UNDEFINED
from tests.engine.builder import D, candle, run

HEADER = "STRATEGY s VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m\nRULES\n"


@pytest.mark.parametrize(
    ("func", "args", "result"),
    [
        ("ABS", ["-2.50"], "2.50"),
        ("MIN", ["3", "-1.5", "2"], "-1.5"),
        ("MAX", ["3", "-1.5", "2"], "3"),
        ("FLOOR", ["-2.5"], "-3"),
        ("CEIL", ["2.01"], "3"),
        ("SIGN", ["-0.001"], "-1"),
        ("SIGN", ["0"], "0"),
        ("ROUND", ["2.345", "2"], "2.34"),  # half to even
        ("ROUND", ["2.355", "2"], "2.36"),
        ("ROUND", ["1234.5"], "1234"),
        ("SQRT", ["2"], "1.414213562373095"),
        ("LN", ["10"], "2.302585092994046"),
        ("EXP", ["1"], "2.718281828459045"),
        ("SQRT", ["0.0001"], "0.01"),
    ],
)
def test_each_function_on_exact_decimals(func: str, args: list[str], result: str) -> None:
    value = apply(func, [Decimal(a) for a in args])
    assert value == Decimal(result) and str(value) == result


@pytest.mark.parametrize(
    ("func", "args"),
    [("SQRT", ["-1"]), ("LN", ["0"]), ("LN", ["-3"]), ("EXP", ["1e30"]), ("ROUND", ["1", "0.5"])],
)
def test_outside_the_domain_is_an_error_the_evaluator_turns_into_undefined(
    func: str, args: list[str]
) -> None:
    with pytest.raises(DomainError):
        apply(func, [Decimal(a) for a in args])


def test_functions_in_a_strategy_and_a_bad_domain_logged_once() -> None:
    source = HEADER + (
        "    WHEN MAX(btc.close, 100) > 100 AND ABS(btc.close - 100) >= 2\n"
        "        AND POSITION.btc == 0 THEN BUY btc SIZING 1\n"
        "    WHEN SQRT(btc.close - 110) > 1 THEN CLOSE btc\n"
    )
    prices = [100, 101, 103, 104, 112, 100, 99]
    r = run(compile_source(source), [candle(i, p) for i, p in enumerate(prices)])
    assert [(f.side.value, f.price) for f in r.fills] == [("BUY", D(103)), ("SELL", D(112))]
    assert r.warnings == [
        "rule 1: SQRT of a negative number is undefined: the value is undefined (logged once)"
    ]
    condition = compile_source(HEADER + "    WHEN LN(btc.close - 100) > 0 THEN LOG 'x'\n")
    flat = run(condition, [candle(0, 100)])
    assert flat.engine.value_of(condition.rules[0].condition.left) is UNDEFINED  # type: ignore[union-attr]
