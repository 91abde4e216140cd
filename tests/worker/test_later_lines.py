"""LaterLines: a candle's log lines written a moment after it was journaled, with its time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from qkt.engine import EngineEvent, LogEvent, LogLevel, SignalEvent
from qkt.log import LINE_FORMAT, UtcIsoFormatter
from qkt.worker.report import LaterLines, log_events
from tests.helpers import wait_until_async

REPORTED_AT = 1_767_225_600.125  # 2026-01-01T00:00:00.125Z, exact in binary


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    def lines(self) -> list[str]:
        formatter = UtcIsoFormatter(LINE_FORMAT)
        return [formatter.format(record) for record in self.records]


@pytest.fixture
def kept() -> Iterator[tuple[logging.Logger, _Kept]]:
    log = logging.getLogger("qkt.strategy.test_later_lines")
    handler = _Kept()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield log, handler
    finally:
        log.removeHandler(handler)


def _events(*messages: str) -> list[EngineEvent]:
    return [LogEvent(0, LogLevel.INFO, message) for message in messages]


def test_lines_wait_then_come_in_order_with_the_time_they_were_reported(
    kept: tuple[logging.Logger, _Kept],
) -> None:
    log, handler = kept

    async def main() -> None:
        lines = LaterLines(log, delay_s=0.2)
        lines.add(_events("first", "second"), REPORTED_AT)
        lines.add(_events("third"), REPORTED_AT + 0.5)
        await asyncio.sleep(0)  # the loop turns: nothing is written before the delay
        assert handler.records == []
        await wait_until_async(lambda: len(handler.records) >= 3, timeout=5)
        # Lines added after a flush get a timer of their own; the first ones stay written once.
        lines.add(_events("fourth"), REPORTED_AT + 1)
        await wait_until_async(lambda: len(handler.records) >= 4, timeout=5)

    asyncio.run(main())
    assert handler.lines() == [
        "2026-01-01T00:00:00.125Z INFO  qkt.strategy.test_later_lines: first",
        "2026-01-01T00:00:00.125Z INFO  qkt.strategy.test_later_lines: second",
        "2026-01-01T00:00:00.625Z INFO  qkt.strategy.test_later_lines: third",
        "2026-01-01T00:00:01.125Z INFO  qkt.strategy.test_later_lines: fourth",
    ]
    assert [r.msecs for r in handler.records] == [125.0, 125.0, 625.0, 125.0]


def test_flush_writes_the_waiting_lines_at_once(
    kept: tuple[logging.Logger, _Kept],
) -> None:
    log, handler = kept

    async def main() -> None:
        lines = LaterLines(log, delay_s=0.1)
        lines.add(_events("made before the stop"), REPORTED_AT)
        lines.flush()
        assert handler.messages() == ["made before the stop"]
        lines.add(_events("after"), REPORTED_AT)  # lines after a flush wait for their own timer
        assert len(handler.records) == 1
        await wait_until_async(lambda: len(handler.records) >= 2, timeout=5)
        assert handler.messages() == ["made before the stop", "after"]

    asyncio.run(main())


def test_lines_written_now_come_after_the_waiting_ones(
    kept: tuple[logging.Logger, _Kept],
) -> None:
    log, handler = kept

    async def main() -> None:
        lines = LaterLines(log, delay_s=60)
        lines.add(_events("a candle's line"), REPORTED_AT)
        lines.now(_events("an operator's halt"))
        assert handler.messages() == [
            "a candle's line",
            "an operator's halt",
        ]
        assert handler.records[0].created == REPORTED_AT
        assert handler.records[1].created > REPORTED_AT  # stamped when written: now

    asyncio.run(main())


def test_outside_an_event_loop_lines_are_written_at_once(
    kept: tuple[logging.Logger, _Kept],
) -> None:
    log, handler = kept
    LaterLines(log, delay_s=60).add(_events("no loop"), REPORTED_AT)
    assert handler.messages() == ["no loop"]
    assert handler.records[0].created == REPORTED_AT


def test_stamped_lines_are_the_lines_written_at_once(kept: tuple[logging.Logger, _Kept]) -> None:
    log, handler = kept
    events: list[EngineEvent] = [
        SignalEvent(0, 0, 2, "WHEN x > 1 THEN LOG 'é'", "btc 1m", 7),
        LogEvent(0, LogLevel.WARNING, "100% done"),
    ]
    log_events(log, events)
    log_events(log, events, REPORTED_AT)
    now, later = handler.lines()[:2], handler.lines()[2:]
    assert [line.split(" ", 1)[1] for line in now] == [line.split(" ", 1)[1] for line in later]
    assert later[0].startswith("2026-01-01T00:00:00.125Z INFO  ")
    assert later[1].startswith("2026-01-01T00:00:00.125Z WARN")
