"""How the worker words things for people: fill lines, a backtest's summary."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from logging import INFO, WARNING
from typing import Final

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

# How long after its commit a candle's lines are written: past the second in which every
# 1m strategy on the box trades the same candle.
LINES_DELAY_S: Final = 1.0


def fill_line(fill: Fill, *, with_time: bool = True) -> str:
    """`<ISO time> FILL BUY 0.01 BTCUSDT @ 65000.12 fee 0.65 realized 0` (the fill's own time)."""
    text = (
        f"FILL {fill.side.value} {to_str(fill.qty)} {fill.instrument.symbol} @ "
        f"{to_str(fill.price)} fee {to_str(fill.fee)} realized {to_str(fill.realized)}"
    )
    return f"{iso_utc(fill.ts)} {text}" if with_time else text


def log_events(log: logging.Logger, events: list[EngineEvent], at: float | None = None) -> None:
    """A strategy's log lines for its events: fills, rules that fired, its own LOG lines, risk
    actions and rejected orders (orders placed are in the journal and the events only).
    `at` (epoch seconds) is the time the lines carry when they are written after it (LaterLines);
    None stamps them now."""

    def say(level: int, msg: str, *args: object) -> None:
        _line(log, level, at, msg, *args)

    for event in events:
        if isinstance(event, TradeEvent):
            say(INFO, "%s", fill_line(event.fill, with_time=False))
        elif isinstance(event, SignalEvent):
            say(INFO, "rule %d fired (line %d): %s", event.rule, event.line, event.text)
        elif isinstance(event, LogEvent):
            say(WARNING if event.level is LogLevel.WARNING else INFO, "%s", event.message)
        elif isinstance(event, RiskEvent):
            say(WARNING, "RISK %s %s by %s: %s", event.action, event.kind, event.by, event.reason)
        elif isinstance(event, OrderRejectedEvent):
            say(INFO, "order rejected: %s", event.reason)


def _line(log: logging.Logger, level: int, at: float | None, msg: str, *args: object) -> None:
    if at is None:
        log.log(level, msg, *args)
    elif log.isEnabledFor(level):
        # What Logger.log does, with the record's time set to `at` (its msecs as LogRecord
        # makes them; LINE_FORMAT has no file or line, so the caller is not looked up).
        record = log.makeRecord(log.name, level, "(unknown file)", 0, msg, args, None)
        record.relativeCreated += (at - record.created) * 1000
        record.created, record.msecs = at, int((at - int(at)) * 1000) + 0.0
        log.handle(record)


class LaterLines:
    """A strategy's log lines written `delay_s` after its events were journaled, stamped with
    the time they were reported.

    Every 1m strategy on a box takes its candle in the same second; with a thousand of them
    the cores are the queue, and a worker that writes its lines before the next one trades
    delays that trade. Words come after every decision: a candle's lines wait here while the
    other workers take theirs (docs/performance.md, "The log lines after the burst"). Lines
    keep their order: `now` and `flush` write the waiting ones first (the runner calls them for
    an operator's action, before a line of its own and when it stops: nothing waits past the
    worker).
    """

    def __init__(self, log: logging.Logger, delay_s: float = LINES_DELAY_S) -> None:
        self._log = log
        self._delay_s = delay_s
        self._waiting: list[tuple[list[EngineEvent], float]] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, events: list[EngineEvent], at: float) -> None:
        """`events`' lines, `delay_s` from now (at once outside an event loop)."""
        if not events:
            return
        self._waiting.append((events, at))
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self._delay_s, self.flush)

    def now(self, events: list[EngineEvent]) -> None:
        """`events`' lines at once, after the ones waiting (an operator's halt, a flatten)."""
        self.flush()
        log_events(self._log, events)

    def flush(self) -> None:
        """Write every waiting line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, []
        for events, at in waiting:
            log_events(self._log, events, at)


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
