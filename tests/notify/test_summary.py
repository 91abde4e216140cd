"""The daily summary fires at its UTC time on an injected clock, and reaches its channels."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from qkt.notify import (
    DaySummary,
    Event,
    EventKind,
    Notifier,
    StrategyDay,
    SummaryScheduler,
    parse_notify_config,
)
from tests.fakes.telegram import fake_telegram
from tests.helpers import wait_until_async
from tests.notify.support import TOKEN, run

DAY = DaySummary(
    dt.date(2026, 5, 8),
    (
        StrategyDay("beta", Decimal("950.5"), Decimal("-49.5"), Decimal("-12.25"), 3, 1),
        StrategyDay("alpha", Decimal("10234.5"), Decimal("234.5"), Decimal("120"), 7, 0),
    ),
)


def at(hour: int, minute: int, day: int = 8) -> dt.datetime:
    return dt.datetime(2026, 5, day, hour, minute, tzinfo=dt.UTC)


def test_the_summary_fires_once_at_its_time_each_day() -> None:
    now = [at(20, 0)]
    asked: list[dt.date] = []
    published: list[Event] = []

    def source(day: dt.date) -> DaySummary:
        asked.append(day)
        return DAY

    scheduler = SummaryScheduler(dt.time(21, 0), source, published.append, clock=lambda: now[0])
    assert not scheduler.tick()
    now[0] = at(20, 59)
    assert not scheduler.tick()
    now[0] = at(21, 0)
    assert scheduler.tick()
    assert not scheduler.tick()  # once per day
    now[0] = at(23, 59)
    assert not scheduler.tick()
    # The daemon was suspended for two days: one summary when it wakes, not a backlog.
    now[0] = at(22, 0, day=11)
    assert scheduler.tick() and not scheduler.tick()
    assert scheduler.due == at(21, 0, day=12)
    assert asked == [dt.date(2026, 5, 8), dt.date(2026, 5, 11)]
    assert [e.kind for e in published] == [EventKind.SUMMARY, EventKind.SUMMARY]


def test_the_summary_has_a_line_per_strategy_and_a_total() -> None:
    published: list[Event] = []
    now = [at(23, 0, day=7)]
    scheduler = SummaryScheduler(dt.time(0, 0), lambda day: DAY, published.append, lambda: now[0])
    now[0] = at(0, 0)
    assert scheduler.tick()
    (event,) = published
    assert event.fields["day"] == "2026-05-08" and event.fields["change"] == "+185.00"
    assert event.lines == (
        "alpha  equity 10,234.50  today +234.50 (+2.34%)  realized +120.00  trades 7  halts 0",
        "beta   equity 950.50  today -49.50 (-4.95%)  realized -12.25  trades 3  halts 1",
        "total  equity 11,185.00  today +185.00 (+1.68%)  realized +107.75  trades 10  halts 1",
    )


def test_the_summary_arrives_on_a_subscribed_channel(tmp_path: Path) -> None:
    with fake_telegram(TOKEN) as tg:
        cfg = parse_notify_config(
            {
                "summary_at": "21:00",
                "ops": {"kind": "telegram", "token_env": "TG", "chat_id": 5, "coalesce_s": 0,
                        "api_url": tg.base_url(), "events": ["summary"]},
            },
            {"TG": TOKEN},
            tmp_path,
        )  # fmt: skip
        now = [at(20, 0)]

        async def scenario() -> None:
            notifier = Notifier(cfg)
            await notifier.start(summary=lambda day: DAY, clock=lambda: now[0])
            assert notifier.scheduler is not None
            assert not notifier.scheduler.tick()
            now[0] = at(21, 0, 30)
            assert notifier.scheduler.tick()  # what the scheduler's own loop does every 30 s
            await wait_until_async(lambda: tg.sent("5"))
            await notifier.aclose()

        run(scenario())
        (message,) = tg.sent("5")
        assert message["text"].startswith("qkt: daily summary")
        assert "total  equity 11,185.00" in message["text"]
