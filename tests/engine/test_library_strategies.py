"""Whole .qkt strategies on the new indicators against TA-Lib: compiled from source, run bar by
bar, their fills are exactly those TA-Lib's arrays imply (MACD/signal crossings, a close outside
BBANDS, STOCH %K/%D crossings, ADX > 25 with the DIs, SAR flips)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest
import talib

from qkt.dsl import compile_source
from tests.engine.builder import run
from tests.engine.test_reference_strategies import bars, expected_fills, walk

HEADER = "STRATEGY s VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m\nRULES\n"
Arrays = dict[str, np.ndarray]


def arrays(prices: list[Decimal]) -> Arrays:
    candles = bars(prices)
    return {
        name: np.array([float(getattr(c, name)) for c in candles])
        for name in ("open", "high", "low", "close", "volume")
    }


def long_only(enter: str, leave: str) -> str:
    return (
        f"{HEADER}    WHEN ({enter}) AND POSITION.btc == 0 THEN BUY btc SIZING 1\n"
        f"    WHEN ({leave}) AND POSITION.btc > 0 THEN CLOSE btc\n"
    )


def engine_fills(source: str, prices: list[Decimal]) -> list[tuple[int, str]]:
    candles = bars(prices)
    result = run(compile_source(source), candles)
    index = {candle.end_ms: i for i, candle in enumerate(candles)}
    for fill in result.fills:
        assert fill.price == prices[index[fill.ts]]  # at the signal candle's close
    return [(index[f.ts], f.side.value) for f in result.fills]


def crossing(left: np.ndarray, right: np.ndarray) -> Callable[[int, bool], bool]:
    """CROSSES as the language defines it: the side changed since the previous defined bar."""
    above = [
        None if np.isnan(a) or np.isnan(b) else bool(a > b)
        for a, b in zip(left, right, strict=True)
    ]

    def crossed(i: int, up: bool) -> bool:
        if i == 0 or above[i] is None or above[i - 1] is None:
            return False
        return above[i] is up and above[i - 1] is not up

    return crossed


def check(
    source: str,
    prices: list[Decimal],
    enter: Callable[[int], bool],
    leave: Callable[[int], bool],
    least: int,
) -> None:
    expected = expected_fills(prices, enter, leave)
    assert len(expected) >= least  # the series really trades on this signal
    assert engine_fills(source, prices) == expected


@pytest.mark.parametrize("seed", [11, 12])
def test_macd_signal_crossings_trade_where_talib_macd_crosses(seed: int) -> None:
    prices = walk(seed, 2000)
    macd, signal, _ = talib.MACD(arrays(prices)["close"], 12, 26, 9)
    crossed = crossing(macd, signal)
    source = long_only(
        "MACD(btc.close, 12, 26, 9).macd CROSSES ABOVE MACD(btc.close, 12, 26, 9).signal",
        "MACD(btc.close).macd CROSSES BELOW MACD(btc.close).signal",
    )
    check(source, prices, lambda i: crossed(i, True), lambda i: crossed(i, False), 20)


@pytest.mark.parametrize("seed", [13, 14])
def test_close_outside_bbands_trades_where_talib_bands_say(seed: int) -> None:
    prices = walk(seed, 2000)
    close = arrays(prices)["close"]
    upper, _, lower = talib.BBANDS(close, 20, 2, 2)
    source = long_only(
        "btc.close < BBANDS(btc.close, 20, 2, 2).lower",
        "btc.close > BBANDS(btc.close, 20, 2, 2).upper",
    )
    check(
        source, prices, lambda i: bool(close[i] < lower[i]), lambda i: bool(close[i] > upper[i]), 10
    )


@pytest.mark.parametrize("seed", [15, 16])
def test_stoch_k_d_crossings_trade_where_talib_stoch_crosses(seed: int) -> None:
    prices = walk(seed, 2000)
    a = arrays(prices)
    k, d = talib.STOCH(a["high"], a["low"], a["close"], 14, 3, 0, 3, 0)
    crossed = crossing(k, d)
    source = long_only(
        "STOCH(btc.candle, 14, 3, 3).k CROSSES ABOVE STOCH(btc.candle, 14, 3, 3).d AND "
        "STOCH(btc.candle, 14, 3, 3).k < 30",
        "STOCH(btc.candle, 14).k CROSSES BELOW STOCH(btc.candle, 14).d",
    )
    check(
        source,
        prices,
        lambda i: crossed(i, True) and bool(k[i] < 30),
        lambda i: crossed(i, False),
        10,
    )


@pytest.mark.parametrize("seed", [17, 18])
def test_adx_above_25_with_the_dis_trades_where_talib_says(seed: int) -> None:
    prices = walk(seed, 2000)
    a = arrays(prices)
    adx = talib.ADX(a["high"], a["low"], a["close"], 14)
    plus = talib.PLUS_DI(a["high"], a["low"], a["close"], 14)
    minus = talib.MINUS_DI(a["high"], a["low"], a["close"], 14)
    source = long_only(
        "ADX(btc.candle, 14) > 25 AND PLUS_DI(btc.candle, 14) > MINUS_DI(btc.candle, 14)",
        "PLUS_DI(btc.candle) < MINUS_DI(btc.candle)",
    )
    check(
        source,
        prices,
        lambda i: bool(adx[i] > 25 and plus[i] > minus[i]),
        lambda i: bool(plus[i] < minus[i]),
        10,
    )


@pytest.mark.parametrize("seed", [19, 20])
def test_sar_flips_trade_where_talib_sar_flips(seed: int) -> None:
    prices = walk(seed, 2000)
    a = arrays(prices)
    sar = talib.SAR(a["high"], a["low"], 0.02, 0.2)
    crossed = crossing(a["close"], sar)
    source = long_only(
        "btc.close CROSSES ABOVE SAR(btc.candle, 0.02, 0.2)",
        "btc.close CROSSES BELOW SAR(btc.candle)",
    )
    check(source, prices, lambda i: crossed(i, True), lambda i: crossed(i, False), 20)
