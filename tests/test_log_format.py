"""`UtcIsoFormatter`: LINE_FORMAT written directly is the line `logging.Formatter` makes of it."""

from __future__ import annotations

import logging
import sys

from qkt.log import LINE_FORMAT, UtcIsoFormatter
from qkt.timefmt import iso_utc


class _Reference(logging.Formatter):
    """logging's own formatting of LINE_FORMAT, with qkt's time."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_utc(int(record.created * 1000))


def _record(level: int, msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("qkt.strategy", level, __file__, 1, msg, args, exc_info)
    record.created = 1_767_225_600.123
    return record


def test_lines_are_the_ones_logging_would_write() -> None:
    ours, reference = UtcIsoFormatter(LINE_FORMAT), _Reference(LINE_FORMAT)
    for record in (
        _record(logging.INFO, "FILL BUY %s BTCUSDT @ %s", "0.01", "100.5"),
        _record(logging.WARNING, "rule %d fired (line %d): %s", 2, 7, "WHEN x > 1 THEN LOG 'é'"),
        _record(logging.ERROR, "no args: 100%"),
        _record(logging.CRITICAL, "%(name)s stays as written", {"name": "x"}),
        _record(logging.DEBUG, "multi\nline"),
        _record(logging.ERROR, "failed: %s", "x", exc=True),
    ):
        assert ours.format(record) == reference.format(record)
    line = ours.format(_record(logging.INFO, "FILL %s", "x"))
    assert line == "2026-01-01T00:00:00.123Z INFO  qkt.strategy: FILL x"
    failed = ours.format(_record(logging.ERROR, "failed", exc=True))
    assert failed.startswith("2026-01-01T00:00:00.123Z ERROR qkt.strategy: failed\nTraceback")
