"""`PrivateLogFileHandler`: the file behind every log (0600, rotated by size, reopened when moved),
and `held_lines()`, which lets a worker make a candle's lines early and write them later at once.

A worker makes its candle's lines while the candle's code is still in the CPU's caches, before
the journal's commit, and writes them after the commit in one `write`: the commit's flush gives
the core to other workers, so whatever runs after it meets caches they have filled (in a burst of
a thousand 1m strategies that was a tenth of a worker's CPU for the same lines). A commit that
fails drops them: nothing about a candle is reported before its journal holds it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.handlers
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

LOG_FILE_MODE: Final = 0o600
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


def open_private_append(path: Path) -> int:
    """An fd appending to `path`, created 0600; never through a symlink (ELOOP instead): a log
    in a state dir another user could once write to must not be a way into someone's file."""
    return os.open(
        path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, LOG_FILE_MODE
    )


class PrivateLogFileHandler(logging.handlers.RotatingFileHandler):
    """A log file that rotates by size, is reopened at its path when someone else moved or
    deleted it (logrotate), is created 0600 and is never opened through a symlink.

    A write costs one `stat` (has the file moved? how long is it?) and one `write`;
    RotatingFileHandler's own check stats the path twice more, seeks and formats every record
    twice, which shows when a thousand workers log the same candle. While a thread holds the
    handler (`hold`), that thread's lines are kept, formatted, until `end_hold` writes them in
    one go (or drops them); other threads' lines are written as they come.
    """

    def __init__(self, filename: Path, rotation: LogRotation | None = None) -> None:
        rotation = rotation or LogRotation()
        self.dev, self.ino, self.size = -1, -1, 0
        self._held: list[str] | None = None
        self._holder = 0
        super().__init__(
            filename,
            maxBytes=rotation.max_bytes,
            backupCount=rotation.backups,
            encoding="utf-8",
        )
        self._statstream()

    def hold(self) -> None:
        """Keep this thread's lines until `end_hold`."""
        with self.lock or contextlib.nullcontext():
            self._held, self._holder = [], threading.get_ident()

    def end_hold(self, *, write: bool) -> None:
        """Write the held lines at once (`write`), or drop them; stop holding either way."""
        with self.lock or contextlib.nullcontext():
            held, self._held = self._held, None
            if write and held:
                self._write("".join(held))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
            if self._held is not None and threading.get_ident() == self._holder:
                self._held.append(text)
            else:
                self._write(text)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _write(self, text: str) -> None:
        stream = self._reopen_if_moved()
        size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
        # A file holds at most max_bytes, unless one write alone (a line, or a candle's lines)
        # is longer.
        if self.maxBytes > 0 and self.size and self.size + size > self.maxBytes:
            self.doRollover()
            stream = self._reopen_if_moved()
        stream.write(text)
        stream.flush()

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

    def doRollover(self) -> None:
        super().doRollover()
        self._statstream()

    def _open(self) -> io.TextIOWrapper:
        fd = open_private_append(Path(self.baseFilename))
        return open(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


@contextlib.contextmanager
def held_lines() -> Iterator[None]:
    """This thread's log lines made inside the block are written when it ends, in one write per
    file, and dropped if it ends with an exception."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrivateLogFileHandler)]
    for handler in handlers:
        handler.hold()
    written = False
    try:
        yield
        written = True
    finally:
        for handler in handlers:
            handler.end_hold(write=written)
