"""`qkt backtest` checked against references no one here wrote: TA-Lib's indicators decide, bar by
bar, which fills a strategy must make; the summary is recomputed independently from them."""

from __future__ import annotations

import math
import random
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import talib

from qkt.money import CONTEXT
from tests.worker.harness import qkt_args

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
ROWS = 600  # 25 days of hourly candles


def _write_candles(path: Path, seed: int = 11) -> list[Decimal]:
    """A seeded random walk with a slow swing, as an hourly candle CSV; returns the closes."""
    rng = random.Random(seed)
    closes: list[Decimal] = []
    lines = ["timestamp,open,high,low,close,volume"]
    price = 100.0
    previous = Decimal("100.00")
    for i in range(ROWS):
        price += rng.gauss(0, 0.6) + 0.35 * math.sin(i / 9)
        close = Decimal(f"{max(price, 5):.2f}")
        high = max(previous, close) + Decimal("0.25")
        low = min(previous, close) - Decimal("0.25")
        lines.append(f"{START_MS + i * HOUR_MS},{previous},{high},{low},{close},1.5")
        closes.append(close)
        previous = close
    path.write_text("\n".join(lines) + "\n")
    return closes


def _backtest(tmp_path: Path, rules: str, *extra: str) -> dict[str, Any]:
    strategy = tmp_path / "s.qkt"
    strategy.write_text(
        f"STRATEGY ref VERSION 4\nSYMBOLS btc = BACKTEST:BTCUSDT EVERY 1h\nRULES\n{rules}"
    )
    data = tmp_path / "BTCUSDT.csv"
    result = subprocess.run(
        qkt_args("backtest", strategy, "--data", data, "--json", *extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = orjson.loads(result.stdout)  # JSON only on stdout
    return parsed


Expected = list[tuple[str, int, Decimal]]  # (side, fill time, price)


def _expected(
    closes: list[Decimal], enter: Callable[[int], bool], leave: Callable[[int], bool]
) -> Expected:
    """Long-only fills: enter when flat, leave when long, at the bar's close (its end time)."""
    fills: Expected = []
    held = False
    for i, close in enumerate(closes):
        ts = START_MS + (i + 1) * HOUR_MS
        if not held and enter(i):
            fills.append(("BUY", ts, close))
            held = True
        if held and leave(i):
            fills.append(("SELL", ts, close))
            held = False
    return fills


def _got(report: dict[str, Any]) -> Expected:
    return [(t["side"], t["ts"], Decimal(t["price"])) for t in report["trades"]]


def _floats(closes: list[Decimal]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([float(c) for c in closes])


def _clear_of(values: np.ndarray[Any, Any], *levels: np.ndarray[Any, Any] | float) -> None:
    """The test is only meaningful if no value sits within rounding distance of its threshold."""
    for level in levels:
        gap = np.abs(values - level)
        assert np.nanmin(gap) > 1e-9 * np.nanmax(np.abs(values))


def test_ema_crossover_fills_exactly_where_talib_ema_crosses(tmp_path: Path) -> None:
    closes = _write_candles(tmp_path / "BTCUSDT.csv")
    fast, slow = talib.EMA(_floats(closes), 12), talib.EMA(_floats(closes), 26)
    _clear_of(fast, slow)
    above = [None if math.isnan(s) else bool(f > s) for f, s in zip(fast, slow, strict=True)]

    def crossed(i: int, up: bool) -> bool:
        if i == 0 or above[i] is None or above[i - 1] is None:
            return False
        return above[i] is up and above[i - 1] is not up

    expected = _expected(closes, lambda i: crossed(i, True), lambda i: crossed(i, False))
    report = _backtest(
        tmp_path,
        "WHEN EMA(btc.close, 12) CROSSES ABOVE EMA(btc.close, 26) AND POSITION.btc == 0\n"
        "THEN BUY btc SIZING 1\n"
        "WHEN EMA(btc.close, 12) CROSSES BELOW EMA(btc.close, 26) AND POSITION.btc > 0\n"
        "THEN CLOSE btc\n",
    )
    assert len(expected) >= 6
    assert _got(report) == expected
    assert report["candles"] == ROWS and report["strategy"] == "ref" and report["version"] == 4


def test_rsi_30_70_fills_exactly_where_talib_rsi_says(tmp_path: Path) -> None:
    closes = _write_candles(tmp_path / "BTCUSDT.csv", seed=5)
    rsi = talib.RSI(_floats(closes), 14)
    _clear_of(rsi, 30.0, 70.0)
    expected = _expected(closes, lambda i: rsi[i] < 30, lambda i: rsi[i] > 70)
    report = _backtest(
        tmp_path,
        "WHEN RSI(btc.close, 14) < 30 AND POSITION.btc == 0 THEN BUY btc SIZING 1\n"
        "WHEN RSI(btc.close, 14) > 70 AND POSITION.btc > 0 THEN CLOSE btc\n",
    )
    assert len(expected) >= 4
    assert _got(report) == expected


def test_close_versus_sma_fills_exactly_where_talib_sma_says(tmp_path: Path) -> None:
    closes = _write_candles(tmp_path / "BTCUSDT.csv", seed=3)
    values = _floats(closes)
    sma = talib.SMA(values, 20)
    _clear_of(values, sma)
    expected = _expected(closes, lambda i: values[i] > sma[i], lambda i: values[i] < sma[i])
    report = _backtest(
        tmp_path,
        "WHEN btc.close > SMA(btc.close, 20) AND POSITION.btc == 0 THEN BUY btc SIZING 1\n"
        "WHEN btc.close < SMA(btc.close, 20) AND POSITION.btc > 0 THEN CLOSE btc\n",
    )
    assert len(expected) >= 10
    assert _got(report) == expected
    _check_summary(report, closes, expected)


def _check_summary(report: dict[str, Any], closes: list[Decimal], fills: Expected) -> None:
    """Recompute every summary figure from the expected fills, per the definitions."""
    start = Decimal(10_000)
    realized = Decimal(0)
    entry: Decimal | None = None
    wins = closed = 0
    by_time = {ts: (side, price) for side, ts, price in fills}
    equity_curve: list[tuple[int, Decimal]] = []
    for i, close in enumerate(closes):
        ts = START_MS + (i + 1) * HOUR_MS
        if ts in by_time:
            side, price = by_time[ts]
            if side == "BUY":
                entry = price
            else:
                assert entry is not None
                realized += price - entry
                wins, closed, entry = wins + (price > entry), closed + 1, None
        unrealized = Decimal(0) if entry is None else close - entry
        equity_curve.append((ts, start + realized + unrealized))
    peak, drawdown = start, Decimal(0)
    for _, equity in equity_curve:
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    days: dict[int, Decimal] = {}
    for ts, equity in equity_curve:
        days[(ts - 1) // DAY_MS] = equity
    daily = [start, *(days[d] for d in sorted(days))]
    returns = np.array([float(b / a) - 1 for a, b in zip(daily, daily[1:], strict=False)])
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(365)

    # The figures researchers compare (docs/backtest.md), recomputed from the same curve.
    final = equity_curve[-1][1]
    days_spanned = (equity_curve[-1][0] - START_MS) / DAY_MS
    total_return = float(final / start) - 1
    cagr = (1 + total_return) ** (365 / days_spanned) - 1
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0) ** 2)))
    sortino = returns.mean() / downside * math.sqrt(365)
    peak, fraction = start, Decimal(0)
    peak_ts, longest, under = START_MS, 0, False
    for ts, equity in equity_curve:
        if equity < peak:
            fraction = max(fraction, (peak - equity) / peak)
            longest, under = max(longest, ts - peak_ts), True
        else:
            longest = max(longest, ts - peak_ts) if under else longest
            peak, peak_ts, under = equity, ts, False
    pnls = []
    entry = None
    for side, _, price in fills:
        if side == "BUY":
            entry = price
        else:
            assert entry is not None
            pnls.append(price - entry)
    wins_pnl = [p for p in pnls if p > 0]
    losses_pnl = [p for p in pnls if p <= 0]
    held, in_market = False, 0
    for i in range(len(closes)):
        ts = START_MS + (i + 1) * HOUR_MS
        if ts in by_time:
            held = by_time[ts][0] == "BUY"
        in_market += held

    summary = report["summary"]
    assert summary["total_return"] == pytest.approx(total_return, abs=1e-6)
    assert summary["cagr"] == pytest.approx(cagr, rel=1e-5)
    assert summary["sortino"] == pytest.approx(sortino, abs=1e-5)
    assert Decimal(summary["max_drawdown_fraction"]) == round(fraction, 8)
    assert summary["max_drawdown_pct"] == summary["max_drawdown_fraction"]  # the old name
    assert summary["calmar"] == pytest.approx(cagr / float(fraction), rel=1e-5)
    assert summary["longest_drawdown_ms"] == longest
    assert summary["profit_factor"] == pytest.approx(
        float(sum(wins_pnl) / -sum(losses_pnl)), abs=1e-6
    )
    # Money averages are exact decimals to money's 16 significant digits.
    assert Decimal(summary["expectancy"]) == CONTEXT.divide(sum(pnls), len(pnls))
    assert Decimal(summary["avg_win"]) == CONTEXT.divide(sum(wins_pnl), len(wins_pnl))
    assert Decimal(summary["avg_loss"]) == CONTEXT.divide(sum(losses_pnl), len(losses_pnl))
    assert summary["exposure"] == pytest.approx(in_market / len(closes), abs=1e-6)
    assert summary["trades_per_day"] == pytest.approx(len(fills) / days_spanned, abs=1e-6)
    assert summary["buy_and_hold_return"] == pytest.approx(
        float(closes[-1] / closes[0]) - 1, abs=1e-6
    )
    assert summary["fees"] == "0" and summary["wiped_out"] is False
    assert summary["undefined"] == {}
    assert summary["trades"] == len(fills)
    assert Decimal(summary["realized"]) == realized
    assert Decimal(summary["unrealized"]) == equity_curve[-1][1] - start - realized
    assert Decimal(summary["equity"]) == equity_curve[-1][1]
    assert Decimal(summary["total_pnl"]) == equity_curve[-1][1] - start
    assert Decimal(summary["max_drawdown"]) == drawdown
    assert summary["win_rate"] == pytest.approx(wins / closed, abs=1e-6)
    assert summary["sharpe"] == pytest.approx(sharpe, abs=1e-5)


def test_from_and_to_bound_the_replay(tmp_path: Path) -> None:
    _write_candles(tmp_path / "BTCUSDT.csv")
    rules = "WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n"
    # A date in --to counts whole: 2 January and 3 January, 48 hourly candles.
    report = _backtest(tmp_path, rules, "--from", "2026-01-02", "--to", "2026-01-03")
    assert report["candles"] == 48
    assert report["trades"][0]["ts"] == START_MS + DAY_MS + HOUR_MS
    # A datetime in --to is the first moment left out.
    report = _backtest(tmp_path, rules, "--from", "2026-01-02T00:00:00", "--to", "2026-01-02T05:00")
    assert report["candles"] == 5


def test_the_human_report_has_the_trades_and_the_summary(tmp_path: Path) -> None:
    _write_candles(tmp_path / "BTCUSDT.csv")
    strategy = tmp_path / "s.qkt"
    strategy.write_text(
        "STRATEGY once VERSION 1\nSYMBOLS btc = BACKTEST:BTCUSDT EVERY 1h\n"
        "RULES WHEN POSITION.btc == 0 THEN BUY btc SIZING 2\n"
    )
    result = subprocess.run(
        qkt_args("backtest", strategy, "--data", tmp_path / "BTCUSDT.csv", "--fee-bps", "10"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for word in ("1 trades", "max drawdown", "win rate", "Sharpe", "equity", "BUY"):
        assert word in result.stdout
    assert "once v1: 600 candles" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "/no/such/place"], "no data at /no/such/place"),
        (["--from", "yesterday"], "--from takes a date or an ISO 8601 datetime"),
        (["--from", "2026-01-05", "--to", "2026-01-01"], "must be after --from"),
        (["--fee-bps", "-1"], "--fee-bps must not be negative"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, extra: list[str], message: str) -> None:
    _write_candles(tmp_path / "BTCUSDT.csv")
    strategy = tmp_path / "s.qkt"
    strategy.write_text(
        "STRATEGY x VERSION 1\nSYMBOLS btc = BACKTEST:BTCUSDT EVERY 1h\n"
        "RULES WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n"
    )
    args = [*([] if "--data" in extra else ["--data", str(tmp_path / "BTCUSDT.csv")]), *extra]
    result = subprocess.run(
        qkt_args("backtest", strategy, *args), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr.startswith("qkt: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
