"""Whole programs against TA-Lib: the engine's fills are exactly those TA-Lib's indicators imply,
bar by bar (EMA(12)/EMA(26) crossover, RSI(14) 30/70, close vs SMA(20))."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest
import talib

from qkt.engine.values import UNDEFINED
from qkt.market.models import Candle, CandleKey
from tests.engine.builder import D, E, ProgramBuilder, buy, close, run

Signal = Callable[[int], bool]


def walk(seed: int, n: int = 3000) -> list[Decimal]:
    """A random walk in cents, with drift changes so that trends and reversals both occur."""
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.normal(0.0, 0.15, n // 100 + 1), 100)[:n]
    prices = 1000.0 + np.cumsum(rng.normal(0.0, 2.0, n) + drift)
    return [D(f"{max(price, 1.0):.2f}") for price in prices]


def bars(prices: list[Decimal]) -> list[Candle]:
    """Candles whose open is the previous close; high/low a little outside both."""
    out = []
    previous = prices[0]
    for i, price in enumerate(prices):
        high, low = max(previous, price) + D("0.5"), min(previous, price) - D("0.5")
        out.append(Candle(_KEY, _T0 + i * 60_000, previous, high, low, price, D(1)))
        previous = price
    return out


_KEY = CandleKey.parse("SIM:BTCUSDT:1m")
_T0 = 1_700_000_000_000


def expected_fills(prices: list[Decimal], enter: Signal, leave: Signal) -> list[tuple[int, str]]:
    """The long-only trades a signal implies: enter when flat, leave when long."""
    fills, long = [], False
    for i in range(len(prices)):
        if not long and enter(i):
            fills.append((i, "BUY"))
            long = True
        elif long and leave(i):
            fills.append((i, "SELL"))
            long = False
    return fills


def engine_fills(p: ProgramBuilder, prices: list[Decimal]) -> list[tuple[int, str]]:
    r = run(p.build(), bars(prices))
    index = {candle.end_ms: i for i, candle in enumerate(bars(prices))}
    for fill in r.fills:
        assert fill.price == prices[index[fill.ts]]  # at the signal candle's close
    return [(index[f.ts], f.side.value) for f in r.fills]


def long_only(p: ProgramBuilder, enter: E, leave: E) -> None:
    p.rule(enter & (p.position("btc") == 0), buy("btc", 1))
    p.rule(leave & (p.position("btc") > 0), close("btc"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ema_crossover_trades_exactly_where_talib_emas_cross(seed: int) -> None:
    prices = walk(seed)
    x = np.array([float(p) for p in prices])
    fast, slow = talib.EMA(x, 12), talib.EMA(x, 26)
    above = [bool(f > s) if not np.isnan(s) else None for f, s in zip(fast, slow, strict=True)]

    def crossed(i: int, up: bool) -> bool:
        if i == 0 or above[i] is None or above[i - 1] is None:
            return False
        return above[i] is up and above[i - 1] is not up

    expected = expected_fills(prices, lambda i: crossed(i, True), lambda i: crossed(i, False))
    assert len(expected) > 20  # the series really trades

    p = ProgramBuilder()
    btc = p.stream("btc")
    ema_fast, ema_slow = p.ema(btc.close, 12), p.ema(btc.close, 26)
    long_only(p, p.crosses(ema_fast, "ABOVE", ema_slow), p.crosses(ema_fast, "BELOW", ema_slow))
    assert engine_fills(p, prices) == expected


@pytest.mark.parametrize("seed", [4, 5])
def test_rsi_30_70_trades_exactly_where_talib_rsi_says(seed: int) -> None:
    prices = walk(seed)
    rsi = talib.RSI(np.array([float(p) for p in prices]), 14)
    expected = expected_fills(prices, lambda i: bool(rsi[i] < 30), lambda i: bool(rsi[i] > 70))
    assert len(expected) > 10

    p = ProgramBuilder()
    btc = p.stream("btc")
    ours = p.rsi(btc.close, 14)
    long_only(p, ours < 30, ours > 70)
    assert engine_fills(p, prices) == expected


@pytest.mark.parametrize("seed", [6, 7])
def test_close_versus_sma_trades_exactly_where_talib_sma_says(seed: int) -> None:
    prices = walk(seed)
    sma = talib.SMA(np.array([float(p) for p in prices]), 20)
    expected = expected_fills(
        prices, lambda i: bool(float(prices[i]) > sma[i]), lambda i: bool(float(prices[i]) < sma[i])
    )
    assert len(expected) > 50

    p = ProgramBuilder()
    btc = p.stream("btc")
    ours = p.sma(btc.close, 20)
    long_only(p, btc.close > ours, btc.close < ours)
    assert engine_fills(p, prices) == expected


def test_nested_ema_of_rsi_through_the_engine_matches_talib() -> None:
    prices = walk(8, 400)
    reference = talib.EMA(talib.RSI(np.array([float(p) for p in prices]), 14), 5)
    p = ProgramBuilder()
    btc = p.stream("btc")
    nested = p.ema(p.rsi(btc.close, 14), 5)
    p.watch(nested)
    r = run(p.build())
    for bar, expected in zip(bars(prices), reference, strict=True):
        r.feed([bar])
        value = r.engine.value_of(nested.node)
        if np.isnan(expected):
            assert value is UNDEFINED
        else:
            assert isinstance(value, Decimal)
            assert float(value) == pytest.approx(float(expected), rel=1e-9)
    assert r.engine.warm
