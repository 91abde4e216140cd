"""`Program.history_needed()`: with that many closed candles of history, every indicator equals
its value after a much longer history (to 1e-9 relative), nested and smoothed ones included; and
`WARMUP n` raises it, 5,000 a key caps what the indicators alone ask for."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qkt.dsl import compile_source
from qkt.dsl.program import IndicatorCall
from qkt.engine.plan import walk as walk_nodes
from qkt.market.models import CandleKey
from tests.engine.builder import run
from tests.engine.test_reference_strategies import bars, walk

KEY = CandleKey.parse("SIM:BTCUSDT:1m")
SOURCE = """STRATEGY warm VERSION 1 {warmup}
SYMBOLS btc = SIM:BTCUSDT EVERY 1m
RULES
    WHEN EMA(btc.close, 50) > RSI(btc.close, 14) AND ADX(btc.candle, 14) > 0
        AND MACD(btc.close).hist > 0 AND EMA(RSI(btc.close, 14), 9) > 0
        AND STOCHRSI(btc.close, 14, 5, 3, MATYPE=EMA).d > 0 AND T3(btc.close, 5) > 0
        AND BBANDS(btc.close, 20, 2, 2).upper > 0 AND ATR(btc.candle, 14) > 0
        AND ADOSC(btc.candle) > -1000000 AND CMO(btc.close) > -100 THEN LOG 'x'
"""


def test_the_history_asked_for_makes_every_indicator_equal_a_long_run() -> None:
    program = compile_source(SOURCE.format(warmup=""))
    needed = program.history_needed()[KEY]
    assert 400 < needed < 5000
    candles = bars(walk(21, needed + 3000))
    long_run = run(program, candles)
    short_run = run(program, candles[-needed:])
    nodes = [
        node
        for rule in program.rules
        for node in walk_nodes(rule.condition)
        if isinstance(node, IndicatorCall)
    ]
    assert len(nodes) >= 10
    for node in nodes:
        settled, fresh = long_run.engine.value_of(node), short_run.engine.value_of(node)
        assert isinstance(settled, Decimal) and isinstance(fresh, Decimal), node.name
        assert float(fresh) == pytest.approx(float(settled), rel=1e-9), node.name


def test_warmup_raises_the_history_and_the_default_cap_is_5000() -> None:
    assert compile_source(SOURCE.format(warmup="WARMUP 4000")).history_needed()[KEY] == 4000
    lazy = "STRATEGY s VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m\nRULES\n"
    assert compile_source(lazy + "WHEN btc.close > 1 THEN LOG 'x'").history_needed()[KEY] == 1
    slow = lazy + "WHEN EMA(btc.close, 3000) > 1 THEN LOG 'x'"
    assert compile_source(slow).history_needed()[KEY] == 5000
    raised = slow.replace("VERSION 1", "VERSION 1 WARMUP 9000")
    assert compile_source(raised).history_needed()[KEY] == 9000


def test_lags_windows_and_crosses_add_to_what_they_read() -> None:
    base = (
        "STRATEGY s VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m\n"
        "LET s = SMA(btc.close, 20)\nRULES\n"
    )
    plain = compile_source(base + "WHEN s > 1 THEN LOG 'x'").history_needed()[KEY]
    assert plain == 20
    lagged = compile_source(base + "WHEN s@T-5 > 1 THEN LOG 'x'").history_needed()[KEY]
    assert lagged == 25
    window = compile_source(base + "WHEN MAX(s) SINCE T-10 > 1 THEN LOG 'x'").history_needed()[KEY]
    assert window == 29
    crosses = compile_source(base + "WHEN s CROSSES ABOVE 1 THEN LOG 'x'").history_needed()[KEY]
    assert crosses == 21
