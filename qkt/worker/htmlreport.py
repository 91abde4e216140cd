"""`qkt backtest --report out.html`: one self-contained HTML file a researcher can open offline.

Charts are plotly's (equity against buy-and-hold, drawdown, monthly returns), with plotly.js
inlined once in the file, so nothing is fetched when it is viewed; the metrics and the trades are
plain HTML tables. Long curves are thinned to at most `MAX_POINTS` points (the last one always
kept): a browser chart cannot show more, and the file stays a few MB.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from qkt.atomic import write_atomic
from qkt.worker.backtestresult import BacktestResult
from qkt.worker.figures import EquityCurve

MAX_POINTS: Final = 5_000
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def write_report(result: BacktestResult, path: Path, metrics: Sequence[tuple[str, str]]) -> None:
    """Write the report of `result` to `path` (temp + rename); `metrics` are (label, value)."""
    import plotly.graph_objects as go  # only a report pays for importing plotly
    from plotly.offline import get_plotlyjs

    curve = result.curve
    picked = _thin(len(curve.times))
    times = [_moment(curve.times[i]) for i in picked]
    start = float(curve.start_balance)
    equity = go.Figure(
        [
            go.Scatter(x=times, y=[float(curve.equity[i]) for i in picked], name="strategy"),
            go.Scatter(x=times, y=[start * curve.hold[i] for i in picked], name="buy and hold"),
        ],
        layout={"title": "Equity", "yaxis": {"title": "equity"}},
    )
    drawdown = go.Figure(
        [go.Scatter(x=times, y=_drawdown(curve, picked), fill="tozeroy", name="drawdown")],
        layout={"title": "Drawdown", "yaxis": {"title": "below peak", "tickformat": ".1%"}},
    )
    years, grid = monthly_returns(curve)
    monthly = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(MONTHS),
            y=[str(year) for year in years],
            colorscale="RdYlGn",
            zmid=0,
            texttemplate="%{z:.1%}",
        ),
        layout={"title": "Monthly returns", "yaxis": {"type": "category"}},
    )
    charts = "\n".join(
        figure.to_html(full_html=False, include_plotlyjs=False, div_id=name)
        for name, figure in (("equity", equity), ("drawdown", drawdown), ("monthly", monthly))
    )
    title = html.escape(f"{result.strategy} v{result.version}: backtest")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:2px 10px;border-bottom:1px solid #ddd}}td.n{{text-align:right}}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body><h1>{title}</h1>
<p>{result.candles:,} candles, {len(result.fills):,} fills</p>
<h2>Metrics</h2>{_table(("measure", "value"), metrics)}
{charts}
<h2>Trades</h2>{
        _table(
            ("time (UTC)", "side", "symbol", "qty", "price", "fee", "realized"), _trade_rows(result)
        )
    }
</body></html>
"""
    write_atomic(path, page.encode())


def monthly_returns(curve: EquityCurve) -> tuple[list[int], list[list[float | None]]]:
    """Each calendar month's return: its last equity over the previous month's (the first over
    the starting balance) minus 1; None for months without data or after a wipe-out."""
    ends: dict[tuple[int, int], Decimal] = {}
    for ms, value in zip(curve.times, curve.equity, strict=True):
        moment = datetime.fromtimestamp((ms - 1) / 1000, UTC)
        ends[(moment.year, moment.month)] = value
    if not ends:
        return [], []
    years = list(range(min(ends)[0], max(ends)[0] + 1))
    grid: list[list[float | None]] = [[None] * 12 for _ in years]
    previous = curve.start_balance
    for year, month in sorted(ends):
        value = ends[(year, month)]
        if previous > 0:
            grid[year - years[0]][month - 1] = float(value / previous) - 1.0
        previous = value
    return years, grid


def _thin(count: int) -> list[int]:
    step = max(1, -(-count // MAX_POINTS))
    picked = list(range(0, count, step))
    if count and picked[-1] != count - 1:
        picked.append(count - 1)
    return picked


def _drawdown(curve: EquityCurve, picked: list[int]) -> list[float]:
    """Fall below the running peak as a fraction of it (0..1), at the picked samples."""
    peak = curve.start_balance
    falls: list[float] = []
    wanted = iter(picked)
    target = next(wanted, None)
    for index, value in enumerate(curve.equity):
        peak = max(peak, value)
        if index == target:
            falls.append(-min(1.0, float((peak - value) / peak)) if peak > 0 else -1.0)
            target = next(wanted, None)
    return falls


def _moment(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def _trade_rows(result: BacktestResult) -> list[tuple[str, ...]]:
    return [
        (
            _moment(fill.ts),
            fill.side.value,
            fill.instrument.symbol,
            str(fill.qty),
            str(fill.price),
            f"{fill.fee:.2f}",
            f"{fill.realized:.2f}",
        )
        for fill in result.fills
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{html.escape(str(cell))}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
