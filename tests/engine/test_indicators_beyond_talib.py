"""The indicators TA-Lib lacks (HMA, DONCHIAN, KELTNER, SUPERTREND, VWAP) against independent
reference implementations written here from their published definitions, in whole-array numpy
form (nothing shared with the incremental code but TA-Lib's ATR and EMA where the definition
says ATR and EMA)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from qkt.dsl.catalog import INDICATORS, Args
from qkt.engine.indicators import Bar, make_indicator
from tests.engine.indicator_series import SERIES, Candles
from tests.engine.test_indicators_talib import run_ours


def wma(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    weights = np.arange(1, n + 1, dtype=float)
    for i in range(n - 1, len(x)):
        window = x[i - n + 1 : i + 1]
        out[i] = np.nan if np.isnan(window).any() else float(window @ weights / weights.sum())
    return out


def hma(x: np.ndarray, n: int) -> np.ndarray:
    diff = 2 * wma(x, n // 2) - wma(x, n)
    start = int(np.argmax(~np.isnan(diff)))
    out = np.full(len(x), np.nan)
    out[start:] = wma(diff[start:], math.isqrt(n))
    return out


def donchian(c: Candles, n: int) -> list[np.ndarray]:
    upper = np.array([c.high[max(0, i - n + 1) : i + 1].max() for i in range(len(c.high))])
    lower = np.array([c.low[max(0, i - n + 1) : i + 1].min() for i in range(len(c.low))])
    upper[: n - 1] = lower[: n - 1] = np.nan
    return [upper, (upper + lower) / 2, lower]


def keltner(c: Candles, n: int, mult: float) -> list[np.ndarray]:
    middle, atr = talib.EMA(c.close, n), talib.ATR(c.high, c.low, c.close, n)
    return [middle + mult * atr, middle + 0 * atr, middle - mult * atr]


def supertrend(c: Candles, n: int, mult: float) -> list[np.ndarray]:
    """The usual definition, written as a plain loop over whole arrays."""
    atr = talib.ATR(c.high, c.low, c.close, n)
    hl2 = (c.high + c.low) / 2
    basic_upper, basic_lower = hl2 + mult * atr, hl2 - mult * atr
    value, direction = np.full(len(atr), np.nan), np.full(len(atr), np.nan)
    upper, lower = basic_upper.copy(), basic_lower.copy()
    first = int(np.argmax(~np.isnan(atr)))
    for i in range(first, len(atr)):
        if i > first:
            if not (basic_upper[i] < upper[i - 1] or c.close[i - 1] > upper[i - 1]):
                upper[i] = upper[i - 1]
            if not (basic_lower[i] > lower[i - 1] or c.close[i - 1] < lower[i - 1]):
                lower[i] = lower[i - 1]
        previous = direction[i - 1] if i > first else 1.0
        if previous > 0 and c.close[i] < lower[i]:
            direction[i] = -1.0
        elif previous < 0 and c.close[i] > upper[i]:
            direction[i] = 1.0
        else:
            direction[i] = previous
        value[i] = lower[i] if direction[i] > 0 else upper[i]
    return [value, direction]


def vwap(c: Candles, period_ms: int, offset_ms: int) -> np.ndarray:
    times = np.arange(len(c.close)) * 3_600_000  # the test candles are hours from the epoch
    anchor = (times - offset_ms) // period_ms
    typical = (c.high + c.low + c.close) / 3
    out = np.empty(len(c.close))
    for i in range(len(out)):
        same = anchor == anchor[i]
        same[i + 1 :] = False
        out[i] = (typical[same] * c.volume[same]).sum() / c.volume[same].sum()
    return out


CASES = {
    "HMA": (Args((16.0,)), lambda c: [hma(c.close, 16)]),
    "DONCHIAN": (Args((20.0,)), lambda c: donchian(c, 20)),
    "KELTNER": (Args((20.0, 1.5)), lambda c: keltner(c, 20, 1.5)),
    "SUPERTREND": (Args((10.0, 3.0)), lambda c: supertrend(c, 10, 3.0)),
}


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("name", CASES)
def test_beyond_talib_matches_its_reference(name: str, series: str) -> None:
    args, reference = CASES[name]
    candles = SERIES[series](np.random.default_rng(len(series)), 600)
    ours = run_ours(make_indicator(name, args), name, candles)
    warm = INDICATORS[name].lookback(args)
    for column, expected in zip(ours, reference(candles), strict=True):
        assert all(value is None for value in column[:warm])
        assert column[warm] is not None
        for i in range(warm, len(column)):
            assert column[i] == pytest.approx(float(expected[i]), rel=1e-9, abs=1e-9), f"at {i}"


@pytest.mark.parametrize("anchor", ["1d", "1w"])
def test_vwap_restarts_at_each_utc_day_or_monday(anchor: str) -> None:
    candles = SERIES["gappy"](np.random.default_rng(5), 24 * 20)
    indicator = make_indicator("VWAP", Args((), anchor=anchor))
    values = []
    for i in range(len(candles.close)):
        fields = (candles.open, candles.high, candles.low, candles.close, candles.volume)
        indicator.update_candle(Bar(*(float(a[i]) for a in fields), open_ms=i * 3_600_000))
        values.append(indicator.value)
    week, monday = 7 * 86_400_000, 4 * 86_400_000
    expected = vwap(candles, 86_400_000, 0) if anchor == "1d" else vwap(candles, week, monday)
    assert values == pytest.approx(list(expected), rel=1e-9)
    # 1970-01-05 was the first Monday: a weekly VWAP restarts at candle 96, a daily one at 24.
    restart = 96 if anchor == "1w" else 24
    assert values[restart] == pytest.approx(
        (candles.high[restart] + candles.low[restart] + candles.close[restart]) / 3, rel=1e-12
    )
