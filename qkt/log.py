"""One log format for the daemon and every worker: `2026-05-08T15:02:14.234Z INFO  name: msg`.

Log files are the user's (0600, never opened through a symlink), rotate by size (`x.log` ->
`x.log.1` ... `x.log.N`; default 50 MB x 5, `[logs]` in the daemon's config or `qkt daemon
--log-max-mb/--log-backups`, handed to workers through the environment), follow their path when
an operator moves them away (logrotate, `mv`), and a line repeated in a flood is written a few
times, then once more with how many copies were left out ("... repeated 315 more times within
10 s"): a rule firing on every candle cannot fill the disk.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TextIO

from qkt.logfile import MB as MB
from qkt.logfile import LogRotation as LogRotation
from qkt.logfile import PrivateLogFileHandler as PrivateLogFileHandler
from qkt.logfile import held_lines as held_lines
from qkt.paths import make_private_dir
from qkt.timefmt import iso_utc as iso_utc  # re-exported: the one time format

LINE_FORMAT: Final = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"
# At most REPEAT_BURST identical lines per REPEAT_WINDOW_S seconds; the rest are counted.
REPEAT_WINDOW_S: Final = 10.0
REPEAT_BURST: Final = 5
_REPEAT_KEYS_MAX: Final = 1000


class UtcIsoFormatter(logging.Formatter):
    """Log lines stamped with `iso_utc`; a record carrying `RepeatFilter` counts gets one line
    per count before its own."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_utc(int(record.created * 1000))

    def format(self, record: logging.LogRecord) -> str:
        plain = not (record.exc_info or record.exc_text or record.stack_info)
        if self._fmt == LINE_FORMAT and plain:
            # LINE_FORMAT written directly: the same line as `logging.Formatter` makes of it,
            # without its generic steps (a thousand workers log the same candle's lines).
            record.message = record.getMessage()
            stamp = iso_utc(int(record.created * 1000))
            line = f"{stamp} {record.levelname:<5} {record.name}: {record.message}"
        else:
            line = super().format(record)
        repeats: list[str] = getattr(record, _REPEATS, [])
        if not repeats:
            return line
        stamp = self.formatTime(record)
        notes = [f"{stamp} {'WARN':<5} qkt.log: {note}" for note in repeats]
        return "\n".join([*notes, line])


_REPEATS: Final = "qkt_repeats"


class RepeatFilter(logging.Filter):
    """Collapses a line repeated in a flood (an accept error per connection, say).

    The first `burst` copies of a line within `window` seconds pass; later copies are counted,
    and the count is written as its own line (`... repeated N more times`) in front of the next
    record that passes once that window is over, whatever record that is.
    """

    def __init__(
        self,
        window: float = REPEAT_WINDOW_S,
        burst: int = REPEAT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._window = window
        self._burst = burst
        self._clock = clock
        # line -> [window start, copies passed, copies left out]
        self._seen: dict[tuple[str, int, str], list[float]] = {}
        self._notes: list[str] = []  # counts waiting for the next record that passes
        self._swept = clock()

    def key(self, record: logging.LogRecord) -> tuple[str, int, str] | None:
        """What makes two records "the same line" (None: this filter leaves it alone)."""
        return (record.name, record.levelno, record.getMessage())

    def note(self, key: tuple[str, int, str], passed: int, left_out: int) -> str:
        """The line that says how many copies of `key` were left out."""
        message = key[2] if len(key[2]) <= 200 else key[2][:200] + "..."
        return (
            f"{key[0]}: {message!r} repeated {left_out} more times "
            f"within {self._window:g} s (not written)"
        )

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        if now - self._swept >= 1.0:
            self._swept = now
            self._notes.extend(self._expire(now))
        key = self.key(record)
        if key is None:
            if self._notes:
                setattr(record, _REPEATS, [*getattr(record, _REPEATS, []), *self._notes])
                self._notes.clear()
            return True
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] >= self._window:
            self._notes.extend(self._expire(now))  # this line's window is over: count it now
            entry = None
        if entry is None:
            if len(self._seen) >= _REPEAT_KEYS_MAX:
                self._notes.extend(self._expire(now, everything=True))
            self._seen[key] = [now, 1, 0]
        elif entry[1] < self._burst:
            entry[1] += 1
        else:
            entry[2] += 1
            return False
        if self._notes:
            setattr(record, _REPEATS, [*getattr(record, _REPEATS, []), *self._notes])
            self._notes.clear()
        return True

    def _expire(self, now: float, *, everything: bool = False) -> list[str]:
        """Forget windows that are over; the counts of those that left lines out, as notes."""
        notes = []
        for key, (start, passed, left_out) in list(self._seen.items()):
            if now - start < self._window and not everything:
                continue
            del self._seen[key]
            if left_out:
                notes.append(self.note(key, int(passed), int(left_out)))
        return notes


RULE_FIRED: Final = "rule %d fired (line %d): %s"  # the worker's line for each rule firing
RULE_WINDOW_S: Final = 60.0


class RuleFiringFilter(RepeatFilter):
    """A rule that fires on every candle is one line a minute, with its count.

    The first firing of a rule in a minute is written as it comes; the others are counted, and
    the count follows once the minute is over: `rule 2 (line 7) fired 315 times in the last
    minute (1 written, the rest counted)`. Each firing is still in the journal and `/events`.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(window=RULE_WINDOW_S, burst=1, clock=clock)

    def key(self, record: logging.LogRecord) -> tuple[str, int, str] | None:
        args = record.args
        if record.msg != RULE_FIRED or not isinstance(args, tuple) or len(args) < 2:
            return None
        return (record.name, record.levelno, f"rule {args[0]} (line {args[1]})")

    def note(self, key: tuple[str, int, str], passed: int, left_out: int) -> str:
        minute = "minute" if self._window == RULE_WINDOW_S else f"{self._window:g} s"
        return (
            f"{key[0]}: {key[2]} fired {passed + left_out} times in the last {minute} "
            f"({passed} written, the rest counted)"
        )


def configure(
    *,
    file: Path | None = None,
    stream: TextIO | None = None,
    level: int = logging.INFO,
    rotation: LogRotation | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Route the root logger to `file` and/or `stream`, replacing earlier handlers; `clock`
    (seconds) is the time the filters of repeated lines and rule firings count by.

    A worker calls this after fork/spawn with only its own file, so that each strategy's log holds
    only its own lines (the OS separates them, not a filter).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = UtcIsoFormatter(LINE_FORMAT)
    handlers: list[logging.Handler] = []
    if file is not None:
        make_private_dir(file.parent)
        handlers.append(PrivateLogFileHandler(file, rotation or LogRotation.from_env()))
    if stream is not None:
        handlers.append(logging.StreamHandler(stream))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RuleFiringFilter(clock=clock))
        handler.addFilter(RepeatFilter(clock=clock))
        root.addHandler(handler)
    root.setLevel(level)
    # A line names its logger, level and time only: skip what a record would otherwise look up
    # (the caller's frame, thread and process), as logging's docs suggest ("Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # uvicorn's access log would drown the strategy's own lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
