"""Watchdog: which running workers have stopped beating, judged so that a busy box fools nobody.

Liveness used to be a `/health` request to every worker every 2 s, three misses and SIGKILL. On a
loaded box (300 workers waking on the same candle) the answers came late, healthy workers were
killed, their restarts added load, and the box fell into a restart storm. Now:

- a worker beats (a timestamp in a shared file, `qkt.worker.heartbeat`); reading it costs the
  daemon no request;
- late is not dead: a worker is hung only when its last beat is older than the deadline, and the
  deadline grows with the box's load (load average per core above 1 stretches it);
- the population decides: when many workers are late at once, that is the box, not the workers,
  and nobody is killed (said once per episode, in the log and in `GET /health`);
- an exit is not the watchdog's business: the reaper sees it at once.

`judge` is a pure function of the beats and a clock, so its rules are tested without waiting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from qkt.paths import StateDir
from qkt.supervisor.handle import WorkerHandle
from qkt.worker.heartbeat import HeartbeatReader, heartbeat_file

log = logging.getLogger(__name__)

# At least this many late workers at once, and at least this share of the watched ones, is the
# box being slow, not that many workers hanging together.
QUORUM_MIN: Final = 3
QUORUM_SHARE: Final = 0.2


def box_load() -> float:
    """The 1-minute load average per CPU core (1.0: every core busy)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one look found: the workers to kill as hung, and why nobody else is."""

    hung: tuple[str, ...]  # names whose beat is older than the deadline (to be killed)
    late: tuple[str, ...]  # every name past the deadline (hung ones included)
    deadline_s: float  # the deadline this look used (hang_timeout_s stretched by load)
    busy_box: bool  # so many were late at once that nobody was killed


class Watchdog:
    """Judges the ages of the running workers' last beats."""

    def __init__(
        self,
        hang_timeout_s: float,
        *,
        load: Callable[[], float] = box_load,
        quorum_min: int = QUORUM_MIN,
        quorum_share: float = QUORUM_SHARE,
    ) -> None:
        self.hang_timeout_s = hang_timeout_s
        self._load = load
        self._quorum_min = quorum_min
        self._quorum_share = quorum_share
        self.busy_since: float | None = None  # a busy-box episode is under way (monotonic)

    def deadline_s(self) -> float:
        """The hang timeout, stretched by the box's load beyond one runnable task per core."""
        return self.hang_timeout_s * max(1.0, self._load())

    def judge(self, last_beats: Mapping[str, float], now: float) -> Verdict:
        """`last_beats`: name -> monotonic time of its last beat (or of its start, before the
        first beat); `now`: the same clock."""
        deadline = self.deadline_s()
        late = tuple(sorted(name for name, at in last_beats.items() if now - at > deadline))
        quorum = max(self._quorum_min, self._quorum_share * len(last_beats))
        busy = len(late) >= quorum
        if busy and self.busy_since is None:
            self.busy_since = now
            log.warning(
                "%d of %d workers are late at once (no beat for %.0f s): the box is busy, "
                "not the workers; none is killed while it lasts",
                len(late),
                len(last_beats),
                deadline,
            )
        elif not busy and self.busy_since is not None:
            log.warning("workers beat on time again after %.0f s", now - self.busy_since)
            self.busy_since = None
        return Verdict(() if busy else late, late, deadline, busy)


class Liveness:
    """The registry's eyes on its running workers: maps their heartbeat files, reads them, and
    asks the watchdog which have stopped beating."""

    def __init__(self, state: StateDir, watchdog: Watchdog) -> None:
        self._state = state
        self.watchdog = watchdog
        self.late = 0  # workers late at the last look

    def watch(self, handle: WorkerHandle) -> None:
        """Map the heartbeat file of a worker that is now running (once per handle: every
        process of a strategy beats into the same file), and read it once: a worker beats
        just before it says it is ready, so its trade count is known from the deploy's answer
        on, not only from the next look a second later."""
        if handle.heartbeat is None:
            handle.heartbeat = HeartbeatReader.open(heartbeat_file(self._state.root, handle.name))
            if handle.heartbeat is None:
                log.warning("%s has no heartbeat file: only its exit is watched", handle.name)
        self.last_beat(handle)

    def unwatch(self, handle: WorkerHandle) -> None:
        if handle.heartbeat is not None:
            handle.heartbeat.close()
            handle.heartbeat = None

    def last_beat(self, handle: WorkerHandle) -> float | None:
        """When the worker's current process last beat (its start, before its first beat); None
        for a worker that does not beat. Updates the handle's trade count from the beat."""
        reader = handle.heartbeat
        if reader is None:
            return None
        beat = reader.read()
        if beat.pid != handle.pid:
            # Not this process's beat (yet), or the file was replaced: map it again.
            reader.close()
            path = heartbeat_file(self._state.root, handle.name)
            reader = handle.heartbeat = HeartbeatReader.open(path)
            if reader is None:
                return handle.started_mono
            beat = reader.read()
            if beat.pid != handle.pid:
                return handle.started_mono
        if beat.trades is not None:
            handle.trades = beat.trades
        return max(beat.at, handle.started_mono)

    def look(self, running: Iterable[WorkerHandle], now: float) -> list[WorkerHandle]:
        """The running workers found hung now, each marked (`hung`, `error`) for the crash
        record; the caller kills them."""
        beats: dict[str, float] = {}
        handles: dict[str, WorkerHandle] = {}
        for handle in running:
            at = self.last_beat(handle)
            if at is not None:
                beats[handle.name], handles[handle.name] = at, handle
        verdict = self.watchdog.judge(beats, now)
        self.late = len(verdict.late)
        hung = []
        for name in verdict.hung:
            handle = handles[name]
            if handle.pid is None or handle.hung:
                continue
            handle.hung = True
            handle.error = (
                f"no heartbeat for {now - beats[name]:.0f} s (deadline "
                f"{verdict.deadline_s:.0f} s): hung, killed"
            )
            log.error("%s %s", name, handle.error)
            hung.append(handle)
        return hung
