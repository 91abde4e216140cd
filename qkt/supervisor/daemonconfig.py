"""DaemonConfig and its worker settings: the frozen record every part of the daemon runs with.

Its own module so that the daemon's parts import the record alone; reading a TOML file and
checking its keys (config.py, configkeys.py) is the business of whoever builds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from qkt.log import LogRotation
from qkt.market.feed import FeedOptions
from qkt.notify import NotifyConfig
from qkt.paths import StateDir
from qkt.supervisor.brake import BrakeSettings
from qkt.supervisor.errors import ConfigError
from qkt.supervisor.restart import RestartPolicy
from qkt.supervisor.riskconfig import RiskSettings

SpawnMethod = Literal["fork", "exec"]
SPAWN_METHODS: Final = ("fork", "exec")
WORKER_MODULE: Final = "qkt.worker"


@dataclass(frozen=True, slots=True)
class PortRange:
    """The inclusive range `--worker-ports LO-HI` takes workers' status ports from."""

    lo: int
    hi: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """Parse `9100-9199`; ConfigError saying what is wrong."""
        lo_text, dash, hi_text = text.strip().partition("-")
        try:
            lo, hi = int(lo_text), int(hi_text if dash else lo_text)
        except ValueError:
            raise ConfigError(f"bad port range {text!r}: expected LO-HI, e.g. 9100-9199") from None
        if not 1 <= lo <= hi <= 65535:
            raise ConfigError(f"bad port range {text!r}: need 1 <= LO <= HI <= 65535")
        return cls(lo, hi)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.lo, self.hi + 1))

    def __str__(self) -> str:
        return f"{self.lo}-{self.hi}"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How the daemon starts, watches and stops workers."""

    module: str = WORKER_MODULE  # `python -m MODULE SPEC` / `MODULE.run_worker(spec)`
    spawn: SpawnMethod = "fork"  # fork server, or a plain interpreter per worker
    bind: str = "127.0.0.1"
    ports: PortRange | None = None  # None: ephemeral ports
    ready_timeout_s: float = 30.0
    stop_timeout_ms: int = 5000  # grace before SIGKILL (as `qkt stop --timeout`)
    # No heartbeat for this long (stretched by the box's load) and the worker is hung.
    hang_timeout_s: float = 20.0
    log_tail: int = 20  # log lines kept in a crashed worker's status


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Everything `qkt daemon` runs with."""

    state: StateDir
    load_dir: Path | None = None
    control_port: int = 0
    feed: FeedOptions = field(default_factory=FeedOptions)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    deploy_concurrency: int = 8  # deploys at start (load dir, redeploys) run this many at once
    # Workers starting at once (deploys and restarts): a spawn costs a core for a while.
    spawn_concurrency: int = field(default_factory=lambda: max(2, 2 * (os.cpu_count() or 1)))
    brake: BrakeSettings = field(default_factory=BrakeSettings)
    control_connections: int = 64  # control-plane connections at once (TCP and Unix socket)
    control_header_timeout_s: float = 10.0  # to send a whole request, or be disconnected
    logs: LogRotation = field(default_factory=LogRotation)  # the daemon's log and its workers'
    tick_s: float = 0.2
    risk: RiskSettings = field(default_factory=RiskSettings)
    history_wait_s: float = 60.0  # a deploy waits at most this for its keys' history
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # alert channels (`[notify.*]`)
