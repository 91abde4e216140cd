"""One log format for the daemon and every worker: `2026-05-08T15:02:14.234Z INFO  name: msg`.

Log files are the user's (0600, never opened through a symlink), rotate by size (`x.log` ->
`x.log.1` ... `x.log.N`; default 50 MB x 5, `[logs]` in the daemon's config or `qkt daemon
--log-max-mb/--log-backups`, handed to workers through the environment), follow their path when
an operator moves them away (logrotate, `mv`), and a line repeated in a flood is written a few
times, then once more with how many copies were left out ("... repeated 315 more times within
10 s"): a rule firing on every candle cannot fill the disk.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from qkt.paths import make_private_dir
from qkt.timefmt import iso_utc as iso_utc  # re-exported: the one time format

LINE_FORMAT: Final = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"
LOG_FILE_MODE: Final = 0o600
# At most REPEAT_BURST identical lines per REPEAT_WINDOW_S seconds; the rest are counted.
REPEAT_WINDOW_S: Final = 10.0
REPEAT_BURST: Final = 5
_REPEAT_KEYS_MAX: Final = 1000
MB: Final = 1024 * 1024
ENV_MAX_BYTES: Final = "QKT_LOG_MAX_BYTES"
ENV_BACKUPS: Final = "QKT_LOG_BACKUPS"
DEFAULT_MAX_BYTES: Final = 50 * MB
DEFAULT_BACKUPS: Final = 5


@dataclass(frozen=True, slots=True)
class LogRotation:
    """Size-based rotation of every log file: at most `(backups + 1) * max_bytes` per log
    (plus one line); `max_bytes` 0 turns rotation off."""

    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS

    def __post_init__(self) -> None:
        if self.max_bytes < 0 or self.backups < 1:
            raise ValueError("log rotation needs max_bytes >= 0 and backups >= 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LogRotation:
        """The rotation the daemon handed down (its workers inherit its environment)."""
        env = os.environ if env is None else env
        try:
            return cls(
                int(env.get(ENV_MAX_BYTES, DEFAULT_MAX_BYTES)),
                int(env.get(ENV_BACKUPS, DEFAULT_BACKUPS)),
            )
        except ValueError:
            return cls()

    def export(self, env: MutableMapping[str, str]) -> None:
        """Hand this rotation to every process started from here (the daemon's workers)."""
        env[ENV_MAX_BYTES] = str(self.max_bytes)
        env[ENV_BACKUPS] = str(self.backups)


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


def open_private_append(path: Path) -> int:
    """An fd appending to `path`, created 0600; never through a symlink (ELOOP instead): a log
    in a state dir another user could once write to must not be a way into someone's file."""
    return os.open(
        path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, LOG_FILE_MODE
    )


class PrivateLogFileHandler(logging.handlers.RotatingFileHandler):
    """A log file that rotates by size, is reopened at its path when someone else moved or
    deleted it (logrotate), is created 0600 and is never opened through a symlink.

    A line costs one `stat` (has the file moved? how long is it?) and one `write`;
    RotatingFileHandler's own check stats the path twice more, seeks and formats every record
    twice, which shows when a thousand workers log the same candle.
    """

    def __init__(self, filename: Path, rotation: LogRotation | None = None) -> None:
        rotation = rotation or LogRotation()
        self.dev, self.ino, self.size = -1, -1, 0
        super().__init__(
            filename,
            maxBytes=rotation.max_bytes,
            backupCount=rotation.backups,
            encoding="utf-8",
        )
        self._statstream()

    def _statstream(self) -> None:
        if self.stream is not None:
            info = os.fstat(self.stream.fileno())
            self.dev, self.ino, self.size = info.st_dev, info.st_ino, info.st_size

    def _reopen_if_moved(self) -> io.TextIOWrapper:
        """The stream to write to, with `size` brought up to date: a file no longer at our
        path (moved or deleted by someone else) is reopened there, as WatchedFileHandler does."""
        try:
            info: os.stat_result | None = os.stat(self.baseFilename)
        except FileNotFoundError:
            info = None
        if info is not None and (info.st_dev, info.st_ino) == (self.dev, self.ino) and self.stream:
            self.size = info.st_size  # what this handler wrote, and the process's own stderr
            return self.stream
        if self.stream is not None:
            self.stream.flush()
            self.stream.close()
        self.stream = stream = self._open()
        self._statstream()
        return stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self._reopen_if_moved()
            line = self.format(record) + self.terminator
            size = len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
            # A file holds at most max_bytes, unless one line alone is longer.
            if self.maxBytes > 0 and self.size and self.size + size > self.maxBytes:
                self.doRollover()
                stream = self._reopen_if_moved()
            stream.write(line)
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def doRollover(self) -> None:
        super().doRollover()
        self._statstream()

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
