"""The daily summary's figures: each strategy's equity, its change since 00:00 UTC, realized PnL,
trades and halts, from the workers' last `/status` answers.

`DayFigures.observe` is fed every status the daemon gathers (periodically, and right before the
summary); `DayFigures.summary(day)` is the `DaySummary` qkt.notify sends. The day's starting
equity is the first one seen that UTC day (a strategy deployed today starts at its balance).
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
    halts: int


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

    def observe(self, status: RunningStatus) -> None:
        """Take one worker's `/status` (money arrives as exact decimal strings)."""
        today = self._clock().date()
        equity = _decimal(status.equity)
        halts = status.extra.get("halts")
        seen = self._seen.get(status.name)
        if seen is None:
            # A worker that started today started the day at its balance; an older one is
            # first seen now (a daemon restart), so its change counts from here.
            fresh = status.started_at[:10] == today.isoformat()
            start = _decimal(status.start_balance) if fresh else equity
            seen = _Seen(today, start, equity, Decimal(0), 0, 0, 0)
            self._seen[status.name] = seen
        elif seen.day != today:  # a new UTC day: its change counts from here
            seen.day, seen.day_start, seen.day_trades_start = today, seen.equity, seen.trades
        seen.equity = equity
        seen.realized = _decimal(status.realized)
        seen.trades = status.trades
        if isinstance(halts, int) and not isinstance(halts, bool):
            seen.halts = halts

    def forget_all_but(self, names: Iterable[str]) -> None:
        """Drop strategies no longer deployed (the summary lists what runs)."""
        keep = set(names)
        for name in list(self._seen):
            if name not in keep:
                del self._seen[name]

    def summary(self, day: dt.date) -> DaySummary:
        """The figures for the summary of `day` (what was last seen of each strategy)."""
        rows = tuple(
            StrategyDay(
                name,
                seen.equity,
                seen.equity - seen.day_start,
                seen.realized,
                seen.trades - seen.day_trades_start,
                seen.halts,
            )
            for name, seen in sorted(self._seen.items())
        )
        return DaySummary(day, rows)
