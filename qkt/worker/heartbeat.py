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

After the beat the same file holds the strategy's figures (equity, PnL, trades, halt, warm-up,
feed freshness: `qkt.worker.record.WorkerFigures` as JSON), rewritten by a beat when they have
changed, for `/metrics`, `qkt list -a` and the daemon-wide risk limits: a scrape of a thousand
strategies reads a thousand memory maps instead of asking a thousand workers for their `/status`.
The figures go in behind a length and a CRC-32 of their text, so a reader that catches the
writer halfway sees a mismatch and keeps what it had, with no lock between the processes.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from qkt.paths import StateDir, make_private_dir

# monotonic seconds of the beat, pid of the writer, trades so far (-1: not known), halt changes
BEAT: Final = struct.Struct("<dqqq")
BEAT_INTERVAL_S: Final = 2.0  # how often a worker beats (a tenth of the default hang timeout)
FILE_NAME: Final = "heartbeat"
# The figures: length and CRC-32 of their text at FIGURES_AT, the text after them. The file is
# MAP_SIZE bytes; only the pages written take memory (one, for a strategy with a few keys).
FIGURES_HEAD: Final = struct.Struct("<II")
FIGURES_AT: Final = 64
# Right after the beat: the wall clock (epoch ms) of the last beat at which the stored figures
# were still the worker's figures (0: never): how old they are is how long since that.
CONFIRMED: Final = struct.Struct("<q")
CONFIRMED_AT: Final = BEAT.size
MAP_SIZE: Final = 16 * 1024
FIGURES_MAX: Final = MAP_SIZE - FIGURES_AT - FIGURES_HEAD.size


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
    """Map `path` (never through a symlink): MAP_SIZE bytes, or what a reader finds of them
    (a file of an older qkt holds only the beat: a reader must not map past its end)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        size = os.fstat(fd).st_size
        if writable and size < MAP_SIZE:
            os.ftruncate(fd, size := MAP_SIZE)
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        return mmap.mmap(fd, min(size, MAP_SIZE), access=access)
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

    def write_figures(self, text: bytes) -> bool:
        """Store the figures' text (False, and nothing stored, if it is over FIGURES_MAX)."""
        if len(text) > FIGURES_MAX:
            return False
        start = FIGURES_AT + FIGURES_HEAD.size
        self._map[start : start + len(text)] = text
        FIGURES_HEAD.pack_into(self._map, FIGURES_AT, len(text), zlib.crc32(text))
        return True

    def confirm_figures(self, wall_ms: int) -> None:
        """The stored figures are still the worker's figures at `wall_ms`."""
        CONFIRMED.pack_into(self._map, CONFIRMED_AT, wall_ms)

    def close(self) -> None:
        with contextlib.suppress(ValueError, BufferError):
            self._map.close()


class HeartbeatReader:
    """The daemon's side: `read()` the last beat of one worker's file."""

    def __init__(self, path: Path) -> None:
        self._map = _map(path, os.O_RDONLY, writable=False)
        if len(self._map) < BEAT.size:
            self._map.close()
            raise ValueError(f"{path} is too small for a heartbeat")

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

    def figures_confirmed_ms(self) -> int | None:
        """When (epoch ms) the worker last said its stored figures were still current."""
        if len(self._map) < MAP_SIZE:
            return None
        (wall_ms,) = CONFIRMED.unpack_from(self._map, CONFIRMED_AT)
        return wall_ms or None

    def figures(self) -> bytes | None:
        """The figures' text the worker stored last; None if none, or caught being rewritten."""
        if len(self._map) < MAP_SIZE:
            return None
        length, crc = FIGURES_HEAD.unpack_from(self._map, FIGURES_AT)
        if not 0 < length <= FIGURES_MAX:
            return None
        start = FIGURES_AT + FIGURES_HEAD.size
        text = self._map[start : start + length]
        return text if zlib.crc32(text) == crc else None

    def close(self) -> None:
        with contextlib.suppress(ValueError, BufferError):
            self._map.close()
