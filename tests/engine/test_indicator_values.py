"""`StrategyEngine.indicators`: each indicator's latest value by the text a trader wrote."""

from __future__ import annotations

from decimal import Decimal

from qkt.dsl import compile_source
from qkt.engine import StrategyEngine
from qkt.market.models import Candle, CandleKey

KEY = CandleKey.parse("SIM:BTCUSDT:1m")
SOURCE = """\
STRATEGY shown VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1m
LET fast = EMA(btc.close, 3)
RULES
    WHEN btc.close CROSSES ABOVE fast THEN LOG 'up'
    WHEN EMA(btc.close, 3) > SMA(EMA(btc.close, 3), 2) THEN LOG 'rising'
"""


def _candle(minute: int, close: int) -> Candle:
    price = Decimal(close)
    return Candle(KEY, minute * 60_000, price, price, price, price, Decimal(1))


def test_each_indicator_is_named_once_without_slot_numbers_and_none_until_warm() -> None:
    engine = StrategyEngine(compile_source(SOURCE))
    assert engine.indicators == {"EMA(btc.close, 3)": None, "SMA(EMA(btc.close, 3), 2)": None}
    for minute, close in enumerate([1, 2, 3]):
        engine.warm_up(_candle(minute, close))
    # EMA(3) starts at the mean of its first three inputs; the SMA of it needs two of them.
    assert engine.indicators == {"EMA(btc.close, 3)": Decimal(2), "SMA(EMA(btc.close, 3), 2)": None}
    engine.on_candle(_candle(3, 4))  # EMA: 2 + (4 - 2) / 2
    assert engine.indicators == {
        "EMA(btc.close, 3)": Decimal(3),
        "SMA(EMA(btc.close, 3), 2)": Decimal("2.5"),
    }
