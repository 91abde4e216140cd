"""WorkerHandle: the daemon's record of one deployed strategy and its current process."""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field
from typing import Any

from qkt.log import iso_utc
from qkt.market.models import CandleKey
from qkt.supervisor.deployments import Deployment
from qkt.worker.spec import WorkerSpec


class WorkerState(enum.Enum):
    """The `state` of a list entry (spec.md)."""

    STARTING = "starting"  # first spawn, not answering yet
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"  # exited or hung; waiting to restart, or given up (`gave_up`)
    RESTARTING = "restarting"  # spawned again after a crash, not answering yet


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
    restart_at: float | None = None  # monotonic time of the next restart, if one is planned
    gave_up: bool = False
    keys_held: bool = False
    trades: int | None = None  # from the worker's last /status answer
    ping_failures: int = 0
    next_ping: float = 0.0
    spec: WorkerSpec | None = None  # what the current (or last) process was started with
    task: asyncio.Task[Any] | None = None  # a deploy or restart in flight

    @property
    def name(self) -> str:
        return self.deployment.name

    def mark_spawned(self, pid: int) -> None:
        """A new process for this strategy exists (not ready yet)."""
        self.pid = pid
        self.port = None
        self.started_at_ms = int(time.time() * 1000)
        self.started_mono = time.monotonic()
        self.ping_failures = 0

    def uptime_ms(self) -> int:
        """Milliseconds since the current process started; 0 without a process."""
        if self.pid is None:
            return 0
        return int((time.monotonic() - self.started_mono) * 1000)

    def entry(self) -> dict[str, Any]:
        """The `GET /list` entry."""
        now = time.monotonic()
        return {
            "name": self.name,
            "pid": self.pid,
            "port": self.port,
            "state": self.state.value,
            "started_at": None if self.started_at_ms is None else iso_utc(self.started_at_ms),
            "uptime_ms": self.uptime_ms(),
            "trades": self.trades,
            "restarts": self.restarts,
            "file": self.deployment.file,
            "keys": [str(key) for key in self.keys],
            "exit_code": self.exit_code,
            "error": self.error,
            "restart_in_ms": (
                max(0, int((self.restart_at - now) * 1000)) if self.restart_at is not None else None
            ),
            "args": self.deployment.args(),
        }

    def crash_report(self) -> dict[str, Any]:
        """What `GET /status/{name}` says of a worker that has no process answering."""
        return {**self.entry(), "gave_up": self.gave_up, "last_log": list(self.last_log)}
