"""Every TA-Lib indicator of the catalog against the `ta-lib` package on three series (random
walk, gappy, long flat stretches): undefined exactly for TA-Lib's lookback, then every value equal
to 1e-9 relative (or, for values near 0, to 1e-11 of the output's own scale)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from talib import abstract

from qkt.dsl.catalog import INDICATORS, MA_TYPES, Args
from qkt.engine.indicators import Bar, Indicator, make_indicator
from tests.engine.indicator_series import SERIES, Candles

TALIB_NAME = {"HIGHEST": "MAX", "LOWEST": "MIN"}
TALIB_MATYPE = {
    name: i
    for i, name in enumerate(("SMA", "EMA", "WMA", "DEMA", "TEMA", "TRIMA", "KAMA", "MAMA", "T3"))
}

# (indicator, parameters by TA-Lib name, MATYPE): every TA-Lib indicator at its defaults, and
# the variants that exercise what defaults do not (MA types, swapped MACD periods, short ones).
CASES: list[tuple[str, dict[str, float], str | None]] = (
    [(spec.name, {}, None) for spec in INDICATORS.values() if spec.talib]
    + [("MA", {"timeperiod": 10}, matype) for matype in MA_TYPES]
    + [
        ("BBANDS", {"timeperiod": 20, "nbdevup": 2.5, "nbdevdn": 1.5}, "EMA"),
        ("STOCH", {"fastk_period": 14}, "EMA"),
        ("STOCH", {"fastk_period": 14, "slowk_period": 1, "slowd_period": 5}, "WMA"),
        ("STOCHF", {}, "TEMA"),
        ("STOCHRSI", {"timeperiod": 10}, "EMA"),
        ("PPO", {}, "EMA"),
        ("APO", {"fastperiod": 5, "slowperiod": 20}, "KAMA"),
        ("MACD", {"fastperiod": 26, "slowperiod": 12, "signalperiod": 5}, None),
        ("ULTOSC", {"timeperiod1": 20, "timeperiod2": 5, "timeperiod3": 9}, None),
        ("ADX", {"timeperiod": 5}, None),
        ("ADXR", {"timeperiod": 5}, None),
        ("SAR", {"acceleration": 0.05, "maximum": 0.3}, None),
        ("T3", {"timeperiod": 3, "vfactor": 0.9}, None),
        ("RSI", {"timeperiod": 2}, None),
    ]
)


def args_of(name: str, overrides: dict[str, float], matype: str | None) -> Args:
    spec = INDICATORS[name]
    params = tuple(float(overrides.get(p.name, p.default)) for p in spec.params)
    return Args(params, matype or spec.matype or "SMA")


def talib_outputs(name: str, args: Args, candles: Candles) -> tuple[list[np.ndarray], int]:
    spec = INDICATORS[name]
    function = abstract.Function(TALIB_NAME.get(name, name))
    parameters: dict[str, Any] = {
        p.name: int(args.params[i]) if p.whole else args.params[i]
        for i, p in enumerate(spec.params)
    }
    for key in function.parameters:
        if key.endswith("matype"):
            parameters[key] = TALIB_MATYPE[args.matype]
    function.parameters = parameters
    inputs = candles.inputs()
    if spec.input == "two series":
        inputs = {"high": candles.close, "low": candles.open * 0.5 + candles.high * 0.7}
    result = function(inputs)
    outputs = list(result) if isinstance(result, list) else [result]
    return outputs, int(function.lookback)


def run_ours(indicator: Indicator, name: str, candles: Candles) -> list[list[float | None]]:
    spec = INDICATORS[name]
    fields = spec.outputs or (None,)
    out: list[list[float | None]] = [[] for _ in fields]
    second = candles.open * 0.5 + candles.high * 0.7
    for i in range(len(candles.close)):
        if spec.input == "series":
            indicator.update(float(candles.close[i]))
        elif spec.input == "two series":
            indicator.update_pair(float(candles.close[i]), float(second[i]))
        else:
            bar = Bar(
                *(
                    float(a[i])
                    for a in (
                        candles.open,
                        candles.high,
                        candles.low,
                        candles.close,
                        candles.volume,
                    )
                ),
                open_ms=i * 60_000,
            )
            indicator.update_candle(bar)
        for column, field in zip(out, fields, strict=True):
            column.append(indicator.output(field))
    return out


def flat_window(candles: Candles, i: int, n: int) -> bool:
    window = slice(max(0, i - n + 1), i + 1)
    return bool(np.ptp(candles.close[window]) == 0 or np.ptp(candles.high[window]) == 0)


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize(
    ("name", "overrides", "matype"), CASES, ids=lambda v: str(v) if isinstance(v, str) else ""
)
def test_indicator_equals_talib(
    name: str, overrides: dict[str, float], matype: str | None, series: str
) -> None:
    spec = INDICATORS[name]
    args = args_of(name, overrides, matype)
    candles = SERIES[series](np.random.default_rng(len(name) * 7 + len(series)), 700)
    theirs, lookback = talib_outputs(name, args, candles)
    ours = run_ours(make_indicator(name, args), name, candles)
    assert spec.lookback(args) == lookback, "the catalog's lookback is TA-Lib's"
    for column, reference in zip(ours, theirs, strict=True):
        scale = float(np.nanmax(np.abs(reference))) if np.any(~np.isnan(reference)) else 1.0
        for i, (mine, ref) in enumerate(zip(column, reference, strict=True)):
            if i < lookback:
                assert mine is None, f"defined too early at {i}"
                continue
            assert mine is not None, f"undefined at {i} (lookback {lookback})"
            if name in ("CORREL", "BETA") and flat_window(candles, i, int(args.params[0]) + 1):
                continue  # TA-Lib's value is rounding noise there (see docs/indicators.md)
            assert mine == pytest.approx(float(ref), rel=1e-9, abs=1e-11 * scale), (
                f"at {i}: {mine} vs {ref}"
            )
        assert not math.isnan(float(reference[-1]))


@pytest.mark.parametrize("name", INDICATORS)
def test_export_restore_through_json_continues_identically(name: str) -> None:
    """A worker restart restores every indicator from JSON: the values after it are unchanged."""
    candles = SERIES["gappy"](np.random.default_rng(11), 300)
    args = args_of(name, {}, None)
    whole = run_ours(make_indicator(name, args), name, candles)
    first = make_indicator(name, args)
    head = Candles(
        *(a[:157] for a in (candles.open, candles.high, candles.low, candles.close, candles.volume))
    )
    run_ours(first, name, head)
    second = make_indicator(name, args)
    second.restore(json.loads(json.dumps(first.export())))
    tail = Candles(
        *(a[157:] for a in (candles.open, candles.high, candles.low, candles.close, candles.volume))
    )
    rest = run_ours(second, name, tail)
    assert [column[157:] for column in whole] == rest
