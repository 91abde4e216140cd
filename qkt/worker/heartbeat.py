"""The worker's heartbeat: a timestamp in a small shared file the daemon reads without asking.

A worker under a daemon writes, every 2 s from its event loop, four numbers into
`strategies/<name>/heartbeat` through a shared memory map: the system's monotonic clock (the
same clock in every process of the box), its pid, its trade count and how many times its halt
changed (so that the daemon asks a worker for its `/status` only when its halt moved). Writing
is a store into memory: no system call, no socket, no wake-up of the daemon. The daemon maps the
same file and reads the numbers when its watchdog looks (once a second), so liveness costs
neither side an HTTP round trip, and 1,000 workers cost the daemon 1,000 memory reads a second.

A beat proves that the worker's event loop runs: a loop stuck in a computation or a deadlock
stops beating, which is what the daemon's watchdog looks for (`qkt.supervisor.watchdog`).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from qkt.paths import StateDir, make_private_dir

# monotonic seconds of the beat, pid of the writer, trades so far (-1: not known), halt changes
BEAT: Final = struct.Struct("<dqqq")
BEAT_INTERVAL_S: Final = 2.0  # how often a worker beats (a tenth of the default hang timeout)
FILE_NAME: Final = "heartbeat"


def heartbeat_file(state_dir: str | Path, name: str) -> Path:
    """Where the worker `name` of the state dir beats."""
    return StateDir(Path(state_dir)).strategy_dir(name) / FILE_NAME


@dataclass(frozen=True, slots=True)
class Beat:
    """The last beat a worker wrote."""

    at: float  # time.monotonic() of the writer when it beat
    pid: int
    trades: int | None
    halts: int  # how many times the writer's halt changed (halted, lifted, replaced)


def _map(path: Path, flags: int, writable: bool) -> mmap.mmap:
    """Map the first BEAT.size bytes of `path` (never through a symlink)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if writable and os.fstat(fd).st_size < BEAT.size:
            os.ftruncate(fd, BEAT.size)
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        return mmap.mmap(fd, BEAT.size, access=access)
    finally:
        os.close(fd)  # the mapping keeps the file: no descriptor held per worker


class HeartbeatWriter:
    """The worker's side: `beat(trades, halts)` stores the time, the pid and the figures."""

    def __init__(self, path: Path) -> None:
        # The same inode for every process of the strategy: a daemon that mapped it keeps
        # seeing the beats of the next process too.
        make_private_dir(path.parent)
        self._map = _map(path, os.O_RDWR | os.O_CREAT, writable=True)
        self._pid = os.getpid()

    def beat(self, trades: int | None = None, halts: int = 0, now: float | None = None) -> None:
        """One beat: now (monotonic), this pid, `trades` (None: not known), `halts`."""
        at = time.monotonic() if now is None else now
        BEAT.pack_into(self._map, 0, at, self._pid, -1 if trades is None else trades, halts)

    def close(self) -> None:
        with contextlib.suppress(ValueError, BufferError):
            self._map.close()


class HeartbeatReader:
    """The daemon's side: `read()` the last beat of one worker's file."""

    def __init__(self, path: Path) -> None:
        self._map = _map(path, os.O_RDONLY, writable=False)

    @classmethod
    def open(cls, path: Path) -> HeartbeatReader | None:
        """A reader of `path`, or None if the worker made no heartbeat file (or it is too small:
        a worker that does not beat is watched through its exit only)."""
        try:
            return cls(path)
        except (OSError, ValueError):
            return None

    def read(self) -> Beat:
        at, pid, trades, halts = BEAT.unpack_from(self._map, 0)
        return Beat(at, pid, None if trades < 0 else trades, halts)

    def close(self) -> None:
        with contextlib.suppress(ValueError, BufferError):
            self._map.close()
