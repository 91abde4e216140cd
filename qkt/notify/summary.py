"""The daily summary: typed day figures from the daemon, a table, and a UTC-clock scheduler.

The scheduler has no timer of its own that tests would have to wait for: the daemon calls
`tick()` from its tick loop (or runs `run()`), and `tick()` reads the injected clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from qkt.money import quantize
from qkt.notify.events import Event, EventKind

log = logging.getLogger("qkt.notify")

Clock = Callable[[], dt.datetime]
CENT = Decimal("0.01")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class StrategyDay:
    """One strategy's day: equity now, its change since 00:00 UTC, realized PnL, trades, halts."""

    name: str
    equity: Decimal
    change: Decimal
    realized: Decimal
    trades: int
    halts: int


@dataclass(frozen=True, slots=True)
class DaySummary:
    """Every strategy's day, as the daemon saw it at summary time."""

    day: dt.date
    strategies: tuple[StrategyDay, ...]

    def total(self) -> StrategyDay:
        """The sum over all strategies."""
        rows = self.strategies
        return StrategyDay(
            "total",
            sum((r.equity for r in rows), Decimal(0)),
            sum((r.change for r in rows), Decimal(0)),
            sum((r.realized for r in rows), Decimal(0)),
            sum(r.trades for r in rows),
            sum(r.halts for r in rows),
        )


def _money(value: Decimal, *, signed: bool = False) -> str:
    return format(quantize(value, CENT), "+,.2f" if signed else ",.2f")


def summary_lines(summary: DaySummary) -> list[str]:
    """One line per strategy and a total line, aligned for a monospaced reader."""
    rows = [*sorted(summary.strategies, key=lambda r: r.name), summary.total()]
    width = max(len(r.name) for r in rows)
    lines = []
    for row in rows:
        start = row.equity - row.change
        percent = f" ({row.change / start * 100:+.2f}%)" if start else ""
        lines.append(
            f"{row.name:<{width}}  equity {_money(row.equity)}"
            f"  today {_money(row.change, signed=True)}{percent}"
            f"  realized {_money(row.realized, signed=True)}"
            f"  trades {row.trades}  halts {row.halts}"
        )
    return lines


def summary_event(summary: DaySummary, time_ms: int) -> Event:
    """The `summary` event carrying the table as its lines."""
    total = summary.total()
    return Event.of(
        EventKind.SUMMARY,
        None,
        time_ms=time_ms,
        lines=summary_lines(summary),
        day=summary.day.isoformat(),
        strategies=len(summary.strategies),
        equity=_money(total.equity),
        change=_money(total.change, signed=True),
    )


class SummaryScheduler:
    """Publishes the summary once a day at `at` (UTC); a missed day is not sent late twice."""

    def __init__(
        self,
        at: dt.time,
        source: Callable[[dt.date], DaySummary],
        publish: Callable[[Event], None],
        clock: Clock = utc_now,
    ) -> None:
        self._at = at
        self._source = source
        self._publish = publish
        self._clock = clock
        self.due = self._next_after(clock())

    def _next_after(self, now: dt.datetime) -> dt.datetime:
        due = dt.datetime.combine(now.date(), self._at, dt.UTC)
        return due if due > now else due + dt.timedelta(days=1)

    def tick(self) -> bool:
        """Send the summary if it is due; True if it was sent."""
        now = self._clock()
        if now < self.due:
            return False
        # After a long sleep (a suspended host) one summary for the latest day, not a backlog.
        self.due = self._next_after(now)
        day = (self.due - dt.timedelta(days=1)).date()
        try:
            summary = self._source(day)
        except Exception:
            log.exception("notify: could not gather the daily summary for %s", day)
            return False
        self._publish(summary_event(summary, int(now.timestamp() * 1000)))
        return True

    async def run(self, interval_s: float = 30.0) -> None:
        """Tick every `interval_s` until cancelled (for a daemon without a tick loop)."""
        while True:
            self.tick()
            await asyncio.sleep(interval_s)
