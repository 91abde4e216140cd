"""Indicators against TA-Lib on generated series: equal to 1e-9 relative once warm, and
undefined exactly until then."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import talib

from qkt.engine.indicators import Atr, Ema, Rsi, Sma, make_indicator

Series = Callable[[np.random.Generator, int], np.ndarray]


def random_walk(rng: np.random.Generator, n: int) -> np.ndarray:
    return 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))


def with_flat_stretches(rng: np.random.Generator, n: int) -> np.ndarray:
    """A walk that stands still for a while every so often (the price does not move)."""
    walk = random_walk(rng, n)
    for start in range(30, n - 40, 90):
        walk[start : start + int(rng.integers(5, 40))] = walk[start]
    return walk


def trend(rng: np.random.Generator, n: int) -> np.ndarray:
    """Up, then down, with little noise: long runs of gains only, then of losses only."""
    half = n // 2
    up = 50.0 + 0.5 * np.arange(half)
    down = up[-1] - 0.7 * np.arange(n - half)
    return np.concatenate([up, down]) + rng.normal(0.0, 0.01, n)


SERIES: dict[str, Series] = {"walk": random_walk, "flat": with_flat_stretches, "trend": trend}
PERIODS = (1, 2, 5, 14, 26)


def assert_matches(ours: list[float | None], theirs: np.ndarray, warm_at: int) -> None:
    """`ours[i]` is None exactly for i < warm_at, then agrees with TA-Lib to 1e-9 relative."""
    assert len(ours) == len(theirs)
    for i, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        if i < warm_at:
            assert mine is None, f"defined too early at {i}"
            assert math.isnan(ref), f"TA-Lib is defined at {i} but we are not warm"
        else:
            assert mine is not None, f"undefined at {i} (warm at {warm_at})"
            assert mine == pytest.approx(float(ref), rel=1e-9, abs=1e-12), f"at {i}"


def feed(indicator: Sma | Ema | Rsi, values: np.ndarray) -> list[float | None]:
    out: list[float | None] = []
    for x in values:
        indicator.update(float(x))
        out.append(indicator.value)
    return out


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("period", PERIODS)
def test_sma_ema_match_talib(series: str, period: int) -> None:
    values = SERIES[series](np.random.default_rng(period), 600)
    if period > 1:  # TA-Lib's SMA/EMA want a period >= 2
        assert_matches(feed(Sma(period), values), talib.SMA(values, period), period - 1)
        assert_matches(feed(Ema(period), values), talib.EMA(values, period), period - 1)
    else:
        assert feed(Sma(1), values) == pytest.approx(list(values), rel=1e-12)
        assert feed(Ema(1), values) == pytest.approx(list(values), rel=1e-12)


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("period", [p for p in PERIODS if p > 1])
def test_rsi_matches_talib(series: str, period: int) -> None:
    values = SERIES[series](np.random.default_rng(100 + period), 600)
    assert_matches(feed(Rsi(period), values), talib.RSI(values, period), period)


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("period", PERIODS)
def test_atr_matches_talib(series: str, period: int) -> None:
    rng = np.random.default_rng(200 + period)
    close = SERIES[series](rng, 600)
    opens = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(opens, close) + rng.uniform(0.0, 1.0, len(close))
    low = np.minimum(opens, close) - rng.uniform(0.0, 1.0, len(close))
    atr = Atr(period)
    ours: list[float | None] = []
    for h, lo, c in zip(high, low, close, strict=True):
        atr.update_bar(float(h), float(lo), float(c))
        ours.append(atr.value)
    assert_matches(ours, talib.ATR(high, low, close, period), period)


@pytest.mark.parametrize("series", SERIES)
def test_nested_ema_of_rsi_matches_talib(series: str) -> None:
    """The outer EMA is fed each defined value of the inner RSI (TA-Lib skips leading NaNs)."""
    values = SERIES[series](np.random.default_rng(7), 600)
    rsi, ema = Rsi(14), Ema(5)
    ours: list[float | None] = []
    for x in values:
        rsi.update(float(x))
        if rsi.value is not None:
            ema.update(rsi.value)
        ours.append(ema.value)
    assert_matches(ours, talib.EMA(talib.RSI(values, 14), 5), 14 + 5 - 1)


def test_rsi_of_a_series_that_never_moved_is_50_not_talibs_0() -> None:
    """dsl.md: L = 0 -> 100, and 50 when G = 0 too (TA-Lib prints 0 there; we follow dsl.md)."""
    flat = np.full(20, 42.0)
    assert talib.RSI(flat, 14)[-1] == 0.0
    assert feed(Rsi(14), flat)[-1] == 50.0
    rising = np.arange(20, dtype=float)
    assert feed(Rsi(14), rising)[-1] == 100.0 == talib.RSI(rising, 14)[-1]


def test_export_restore_continues_identically() -> None:
    values = random_walk(np.random.default_rng(3), 200)
    for name in ("SMA", "EMA", "RSI"):
        whole = make_indicator(name, 10)
        first = make_indicator(name, 10)
        assert not isinstance(whole, Atr) and not isinstance(first, Atr)
        for x in values[:57]:
            whole.update(float(x))
            first.update(float(x))
        second = make_indicator(name, 10)
        assert not isinstance(second, Atr)
        second.restore(first.export())
        for x in values[57:]:
            whole.update(float(x))
            second.update(float(x))
            assert second.value == whole.value


def test_bad_period_and_name_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Sma(0)
    with pytest.raises(ValueError, match="unknown indicator 'MACDX'"):
        make_indicator("MACDX", 3)
    with pytest.raises(ValueError, match="at least 2"):
        make_indicator("RSI", 1)
