"""One log format for the daemon and every worker: `2026-05-08T15:02:14.234Z INFO  name: msg`.

Log files are the user's (0600, never opened through a symlink), follow their path when an
operator moves them away (logrotate, `mv`), and a line repeated in a flood is written a few times,
then once more with how many copies were left out.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TextIO

from qkt.paths import make_private_dir

LINE_FORMAT: Final = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"
LOG_FILE_MODE: Final = 0o600
# At most REPEAT_BURST identical lines per REPEAT_WINDOW_S seconds; the rest are counted.
REPEAT_WINDOW_S: Final = 10.0
REPEAT_BURST: Final = 5
_REPEAT_KEYS_MAX: Final = 1000


def iso_utc(epoch_ms: int, *, millis: bool = True) -> str:
    """`2026-05-08T15:02:14.234Z` (or `...:14Z` without `millis`): the one way qkt writes a time
    for people, in logs, status answers and tables, whatever the machine's zone."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_ms // 1000))
    return f"{stamp}.{epoch_ms % 1000:03d}Z" if millis else f"{stamp}Z"


class UtcIsoFormatter(logging.Formatter):
    """Log lines stamped with `iso_utc`; a record carrying `RepeatFilter` counts gets one line
    per count before its own."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_utc(int(record.created * 1000))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        repeats: list[str] = getattr(record, _REPEATS, [])
        if not repeats:
            return line
        stamp = self.formatTime(record)
        notes = [f"{stamp} {'WARN':<5} qkt.log: {note}" for note in repeats]
        return "\n".join([*notes, line])


def open_private_append(path: Path) -> int:
    """An fd appending to `path`, created 0600; never through a symlink (ELOOP instead): a log
    in a state dir another user could once write to must not be a way into someone's file."""
    return os.open(
        path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, LOG_FILE_MODE
    )


class PrivateLogFileHandler(logging.handlers.WatchedFileHandler):
    """A log file that is reopened at its path when it was moved or deleted (log rotation),
    created 0600 and never opened through a symlink."""

    def _open(self) -> io.TextIOWrapper:
        fd = open_private_append(Path(self.baseFilename))
        return open(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


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

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        if now - self._swept >= 1.0:
            self._swept = now
            self._notes.extend(self._expire(now))
        key = (record.name, record.levelno, record.getMessage())
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
        for key, (start, _, left_out) in list(self._seen.items()):
            if now - start < self._window and not everything:
                continue
            del self._seen[key]
            if left_out:
                message = key[2] if len(key[2]) <= 200 else key[2][:200] + "..."
                notes.append(
                    f"{key[0]}: {message!r} repeated {int(left_out)} more times "
                    f"within {self._window:g} s (not written)"
                )
        return notes


def configure(
    *, file: Path | None = None, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """Route the root logger to `file` and/or `stream`, replacing earlier handlers.

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
        handlers.append(PrivateLogFileHandler(file, encoding="utf-8"))
    if stream is not None:
        handlers.append(logging.StreamHandler(stream))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RepeatFilter())
        root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's access log would drown the strategy's own lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
