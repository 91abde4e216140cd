"""WorkerHandle: the daemon's record of one deployed strategy, and the state machine of its life.

Every change of `state` is a named transition; one the table below does not allow raises
`IllegalTransition` (a bug in the daemon, never a user mistake). docs/daemon.md draws the table.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field
from typing import Any, Final

from qkt.log import iso_utc
from qkt.market.models import CandleKey
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.records import DaemonRecord, DeployArgs, ListEntry, SourceCheck
from qkt.worker.heartbeat import HeartbeatReader
from qkt.worker.spec import WorkerSpec


class WorkerState(enum.Enum):
    """The `state` of a list entry (spec.md, docs/daemon.md)."""

    STARTING = "starting"  # first spawn, not answering yet
    RUNNING = "running"
    CRASHED = "crashed"  # exited or hung; the restart policy has not decided yet
    BACKOFF = "backoff"  # crashed; waiting `restart_in_ms` before the next start
    RESTARTING = "restarting"  # spawned again after a crash, not answering yet
    FAILED = "failed"  # crashed more often than the restart policy allows: not restarted
    STOPPING = "stopping"
    STOPPED = "stopped"


S = WorkerState
# transition -> (the states it may leave, the state it enters)
TRANSITIONS: Final[dict[str, tuple[frozenset[WorkerState], WorkerState]]] = {
    "ready": (frozenset({S.STARTING, S.RESTARTING}), S.RUNNING),
    # From `starting` only for a deploy at daemon start: it stays deployed, and is retried.
    "crashed": (frozenset({S.STARTING, S.RUNNING, S.RESTARTING}), S.CRASHED),
    "back_off": (frozenset({S.CRASHED}), S.BACKOFF),
    "give_up": (frozenset({S.CRASHED}), S.FAILED),
    "restart": (frozenset({S.BACKOFF}), S.RESTARTING),
    "stopping": (
        frozenset({S.STARTING, S.RUNNING, S.CRASHED, S.BACKOFF, S.RESTARTING, S.FAILED}),
        S.STOPPING,
    ),
    "stopped": (frozenset({S.STOPPING}), S.STOPPED),
}


class IllegalTransition(RuntimeError):
    """A transition its current state does not allow (a daemon bug)."""


@dataclass(slots=True)
class WorkerHandle:
    """A strategy under the daemon: what was deployed, its process, and its crash record.

    Only the registry changes a handle, from the daemon's event loop.
    """

    deployment: Deployment
    keys: tuple[CandleKey, ...]
    state: WorkerState = WorkerState.STARTING
    pid: int | None = None
    port: int | None = None
    started_at_ms: int | None = None  # wall clock, epoch ms, of the current process's spawn
    started_mono: float = 0.0
    restarts: int = 0
    exit_code: int | None = None  # of the last process that ended
    error: str | None = None  # why it crashed, or why it is not restarted
    last_log: tuple[str, ...] = ()  # the log's last lines when it crashed
    crashes: list[float] = field(default_factory=list)  # monotonic times, for the policy
    restart_at: float | None = None  # monotonic time of the next restart (state `backoff`)
    keys_held: bool = False
    trades: int | None = None  # from the worker's last /status answer
    heartbeat: HeartbeatReader | None = None  # the worker's heartbeat file, mapped
    hung: bool = False  # the watchdog killed the current process for not beating
    spec: WorkerSpec | None = None  # what the current (or last) process was started with
    task: asyncio.Task[Any] | None = None  # a deploy or restart in flight

    @property
    def name(self) -> str:
        return self.deployment.name

    @property
    def gave_up(self) -> bool:
        return self.state is WorkerState.FAILED

    # -- transitions -------------------------------------------------------------------------

    def _move(self, transition: str) -> None:
        sources, target = TRANSITIONS[transition]
        if self.state not in sources:
            raise IllegalTransition(
                f"{self.name}: cannot go {transition!r} from {self.state.value!r}"
            )
        self.state = target

    def spawned(self, pid: int) -> None:
        """A new process for this strategy exists (not ready yet)."""
        if self.state not in (WorkerState.STARTING, WorkerState.RESTARTING):
            raise IllegalTransition(f"{self.name}: spawned while {self.state.value!r}")
        self.pid = pid
        self.port = None
        self.started_at_ms = int(time.time() * 1000)
        self.started_mono = time.monotonic()
        self.hung = False

    def ready(self, port: int) -> None:
        """The process answers on `port`: running."""
        self._move("ready")
        self.port = port
        self.deployment = self.deployment.at_port(port)

    def crashed(self, code: int, last_log: tuple[str, ...], now: float) -> None:
        """The process ended (or was killed for not answering) with `code`."""
        self._move("crashed")
        self.pid, self.port, self.exit_code = None, None, code
        self.last_log = last_log
        self.crashes.append(now)

    def back_off(self, restart_at: float, reason: str) -> None:
        """Restart at `restart_at` (monotonic)."""
        self._move("back_off")
        self.error, self.restart_at = reason, restart_at

    def give_up(self, reason: str) -> None:
        """No more restarts: the strategy stays `failed` until stopped."""
        self._move("give_up")
        self.error, self.restart_at = reason, None

    def restart(self) -> None:
        """The backoff is over: a new process is about to be spawned."""
        self._move("restart")
        self.restart_at = None
        self.restarts += 1

    def stopping(self) -> None:
        self._move("stopping")
        self.restart_at = None

    def stopped(self, code: int | None) -> None:
        self._move("stopped")
        self.pid, self.port, self.exit_code = None, None, code

    # -- views -------------------------------------------------------------------------------

    def uptime_ms(self) -> int:
        """Milliseconds since the current process started; 0 without a process."""
        if self.pid is None:
            return 0
        return int((time.monotonic() - self.started_mono) * 1000)

    def entry(self) -> ListEntry:
        """The `GET /list` entry."""
        return ListEntry(**self._entry_fields())

    def _entry_fields(self) -> dict[str, Any]:
        now = time.monotonic()
        d = self.deployment
        return {
            "name": self.name,
            "pid": self.pid,
            "port": self.port,
            "state": self.state.value,
            "started_at": None if self.started_at_ms is None else iso_utc(self.started_at_ms),
            "uptime_ms": self.uptime_ms(),
            "trades": self.trades,
            "restarts": self.restarts,
            "file": d.file,
            "keys": [str(key) for key in self.keys],
            "exit_code": self.exit_code,
            "error": self.error,
            "restart_in_ms": (
                max(0, int((self.restart_at - now) * 1000)) if self.restart_at is not None else None
            ),
            "args": DeployArgs(d.balance, d.fee_bps, d.slippage_bps, d.sim),
            "halt": d.halt,
        }

    def source_check(self) -> SourceCheck:
        """The deployed source's hash, and whether the file on disk differs from it now."""
        d = self.deployment
        return SourceCheck(d.source_hash, d.file_changed())

    def record(self) -> DaemonRecord:
        """What `GET /status/{name}` says of a worker that has no process answering."""
        check = self.source_check()
        return DaemonRecord(
            **self._entry_fields(),
            gave_up=self.gave_up,
            last_log=list(self.last_log),
            source_hash=check.source_hash,
            file_changed=check.file_changed,
        )
