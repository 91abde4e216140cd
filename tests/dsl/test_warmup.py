"""`WARMUP n` after the header: optional (0.13 files lack it), positioned errors when wrong,
and `warmup` stays an ordinary name everywhere else."""

from __future__ import annotations

import pytest

from qkt.dsl import CompileError, compile_source

BODY = "\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m\nRULES WHEN btc.close > 1 THEN LOG 'x'\n"


def test_warmup_is_optional_and_kept_on_the_program() -> None:
    assert compile_source("STRATEGY s VERSION 1" + BODY).warmup is None
    assert compile_source("STRATEGY s VERSION 1 WARMUP 250" + BODY).warmup == 250
    assert compile_source("STRATEGY s VERSION 1\nwarmup 7" + BODY).warmup == 7


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("WARMUP 0", "1:29: WARMUP must be from 1 to 100000 candles"),
        ("WARMUP 1000001", "1:29: WARMUP must be from 1 to 100000 candles"),
        ("WARMUP many", "1:29: expected a whole number of candles after WARMUP, got 'many'"),
    ],
)
def test_a_bad_warmup_is_a_positioned_error(header: str, message: str) -> None:
    with pytest.raises(CompileError) as caught:
        compile_source("STRATEGY s VERSION 1 " + header + BODY)
    first = caught.value.errors[0]
    assert f"{first.line}:{first.col}: {first.message}" == message


def test_warmup_is_still_an_ordinary_name() -> None:
    source = (
        "STRATEGY s VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m\nLET warmup = 3\n"
        "RULES WHEN btc.close > warmup THEN LOG 'x'\n"
    )
    assert compile_source(source).warmup is None
