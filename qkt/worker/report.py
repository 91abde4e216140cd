"""How the worker words things for people: fill lines, a backtest's summary."""

from __future__ import annotations

import logging
from decimal import Decimal

from qkt.engine import (
    EngineEvent,
    Fill,
    LogEvent,
    LogLevel,
    OrderRejectedEvent,
    RiskEvent,
    SignalEvent,
    TradeEvent,
)
from qkt.log import iso_utc
from qkt.money import to_str
from qkt.worker.backtestresult import BacktestSummary


def fill_line(fill: Fill, *, with_time: bool = True) -> str:
    """`<ISO time> FILL BUY 0.01 BTCUSDT @ 65000.12 fee 0.65 realized 0` (the fill's own time)."""
    text = (
        f"FILL {fill.side.value} {to_str(fill.qty)} {fill.instrument.symbol} @ "
        f"{to_str(fill.price)} fee {to_str(fill.fee)} realized {to_str(fill.realized)}"
    )
    return f"{iso_utc(fill.ts)} {text}" if with_time else text


def log_events(log: logging.Logger, events: list[EngineEvent]) -> None:
    """A strategy's log lines for its events: fills, rules that fired, its own LOG lines, risk
    actions and rejected orders (orders placed are in the journal and the events only)."""
    for event in events:
        if isinstance(event, TradeEvent):
            log.info("%s", fill_line(event.fill, with_time=False))
        elif isinstance(event, SignalEvent):
            log.info("rule %d fired (line %d): %s", event.rule, event.line, event.text)
        elif isinstance(event, LogEvent):
            level = logging.WARNING if event.level is LogLevel.WARNING else logging.INFO
            log.log(level, "%s", event.message)
        elif isinstance(event, RiskEvent):
            log.warning("RISK %s %s by %s: %s", event.action, event.kind, event.by, event.reason)
        elif isinstance(event, OrderRejectedEvent):
            log.info("order rejected: %s", event.reason)


def money(value: Decimal) -> str:
    """Money for reading: thousands separated, cents (small amounts keep 4 significant digits)."""
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}" if abs(value) >= Decimal("0.0001") else f"{value:.2e}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _span(ms: int) -> str:
    days, rest = divmod(ms, 86_400_000)
    return f"{days}d {rest / 3_600_000:.1f}h" if days else f"{rest / 3_600_000:.1f}h"


def summary_rows(summary: BacktestSummary) -> list[tuple[str, str]]:
    """The summary as (measure, value) rows for people: money rounded, ratios to 2 places, and
    `n/a (why)` where a figure is undefined (docs/backtest.md)."""
    f = summary.figures
    why = f.undefined

    def undefined_or(name: str, text: str) -> str:
        return f"n/a ({why[name]})" if name in why and text == "n/a" else text

    rows = []
    if f.wiped_out_ms is not None:
        rows.append(("WIPED OUT", f"equity <= 0 at {iso_utc(f.wiped_out_ms, millis=False)}"))
    if summary.first_ms is not None and summary.last_ms is not None:
        period = f"{iso_utc(summary.first_ms, millis=False)} .. "
        rows.append(("period", period + iso_utc(summary.last_ms, millis=False)))
    rows += [
        ("start balance", money(summary.start_balance)),
        ("equity", money(summary.equity)),
        ("total PnL", money(summary.total_pnl)),
        ("  realized", money(summary.realized)),
        ("  unrealized", money(summary.unrealized)),
        ("fees paid", money(summary.fees)),
        ("total return", undefined_or("total_return", _pct(f.total_return))),
        ("buy and hold return", _pct(f.buy_and_hold_return)),
        ("CAGR", undefined_or("cagr", _pct(f.cagr))),
        ("max drawdown", f"{money(f.max_drawdown)} ({float(f.max_drawdown_fraction):.2%})"),
        ("longest drawdown", _span(f.longest_drawdown_ms)),
        ("Sharpe (daily, x sqrt 365)", undefined_or("sharpe", _ratio(f.sharpe))),
        ("Sortino", undefined_or("sortino", _ratio(f.sortino))),
        ("Calmar", undefined_or("calmar", _ratio(f.calmar))),
        ("trades (fills)", f"{summary.trades:,}"),
        ("trades per day", _ratio(f.trades_per_day)),
        ("win rate", undefined_or("win_rate", _pct(f.win_rate))),
        ("profit factor", undefined_or("profit_factor", _ratio(f.profit_factor))),
        ("expectancy", "n/a" if f.expectancy is None else money(f.expectancy)),
        ("average win", "n/a" if f.avg_win is None else money(f.avg_win)),
        ("average loss", "n/a" if f.avg_loss is None else money(f.avg_loss)),
        ("exposure (time in market)", _pct(f.exposure)),
    ]
    rows += risk_rows(summary)
    if summary.gaps:
        longest = max(summary.gaps, key=lambda gap: gap.missing)
        rows.append(
            (
                "data gaps",
                f"{len(summary.gaps)} (longest: {longest.missing} {longest.symbol} candles after "
                f"{iso_utc(longest.after_ms, millis=False)})",
            )
        )
    return rows


def risk_rows(summary: BacktestSummary) -> list[tuple[str, str]]:
    """Halts (each with its reason) and rejected orders (docs/risk.md), when there were any."""
    rows = []
    halts = [e for e in summary.risk_events if e.action in ("halt", "kill")]
    if halts:
        rows.append(("halts", f"{len(halts):,}"))
        for event in summary.risk_events:
            when = iso_utc(event.ts, millis=False)
            rows.append((f"  {event.action} {when}", event.reason))
    if summary.rejections:
        first = summary.rejections[0]
        rows.append(("rejected orders", f"{len(summary.rejections):,} (first: {first.reason})"))
    return rows
