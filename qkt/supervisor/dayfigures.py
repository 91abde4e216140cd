"""The daily summary's figures: each strategy's equity, its change since 00:00 UTC, realized PnL
and trades (from the figures the workers store in their heartbeat files, or their `/status`),
and its halts of the day (counted from the daemon's halt events, whoever halted it).

`DayFigures.take` is fed the figures the daemon gathers (periodically, and right before the
summary), `observe` a whole `/status`, `halted` each halt; `DayFigures.summary(day)` is the
`DaySummary` qkt.notify sends. The day's starting equity is the first one seen that UTC day (a
strategy deployed today starts at its balance).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from qkt.notify import DaySummary, StrategyDay
from qkt.supervisor.records import RunningStatus

Clock = Callable[[], dt.datetime]


@dataclass(slots=True)
class _Seen:
    day: dt.date
    day_start: Decimal  # equity when this UTC day began (first seen that day)
    equity: Decimal
    realized: Decimal
    trades: int
    day_trades_start: int


@dataclass(frozen=True, slots=True)
class StrategyFigures:
    """What the summary takes of a strategy: money as exact decimal strings."""

    equity: str
    realized: str
    trades: int


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)


class DayFigures:
    """The latest figures of every strategy the daemon has seen running."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seen: dict[str, _Seen] = {}
        self._halts: dict[str, tuple[dt.date, int]] = {}  # halts of the UTC day, by strategy

    def observe(self, status: RunningStatus) -> None:
        """Take one worker's `/status` (money arrives as exact decimal strings)."""
        figures = StrategyFigures(status.equity, status.realized, status.trades)
        self.take(status.name, figures, status.started_at, status.start_balance)

    def halted(self, name: str) -> None:
        """Count a halt of `name` (its halt event, whoever halted it) for today."""
        today = self._clock().date()
        day, count = self._halts.get(name, (today, 0))
        self._halts[name] = (today, count + 1 if day == today else 1)

    def take(
        self, name: str, figures: StrategyFigures, started_at: str | None, start_balance: str
    ) -> None:
        """Take one strategy's figures; `started_at` is its process's start (ISO 8601 UTC)."""
        today = self._clock().date()
        equity = _decimal(figures.equity)
        seen = self._seen.get(name)
        if seen is None:
            # A worker that started today started the day at its balance; an older one is
            # first seen now (a daemon restart), so its change counts from here.
            fresh = started_at is not None and started_at[:10] == today.isoformat()
            start = _decimal(start_balance) if fresh else equity
            seen = _Seen(today, start, equity, Decimal(0), 0, 0)
            self._seen[name] = seen
        elif seen.day != today:  # a new UTC day: its change counts from here
            seen.day, seen.day_start, seen.day_trades_start = today, seen.equity, seen.trades
        seen.equity = equity
        seen.realized = _decimal(figures.realized)
        seen.trades = figures.trades

    def forget_all_but(self, names: Iterable[str]) -> None:
        """Drop strategies no longer deployed (the summary lists what runs)."""
        keep = set(names)
        for name in list(self._seen):
            if name not in keep:
                del self._seen[name]
                self._halts.pop(name, None)

    def summary(self, day: dt.date) -> DaySummary:
        """The figures for the summary of `day` (what was last seen of each strategy)."""
        rows = tuple(
            StrategyDay(
                name,
                seen.equity,
                seen.equity - seen.day_start,
                seen.realized,
                seen.trades - seen.day_trades_start,
                self._halts_on(name, day),
            )
            for name, seen in sorted(self._seen.items())
        )
        return DaySummary(day, rows)

    def _halts_on(self, name: str, day: dt.date) -> int:
        counted_day, count = self._halts.get(name, (day, 0))
        return count if counted_day == day else 0
