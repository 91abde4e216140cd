"""WorkerProcesses: start a strategy's process and end it (spawn, readiness, staged stop).

The registry decides *when* (deploy, stop, crash, restart); this module knows *how*: the spec a
worker is spawned with, the port it may take, what "ready" means (its port file, then `/health`),
and circus's staged kill (SIGTERM or the worker's own `POST /stop`, poll, SIGKILL, reap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from typing import Final

from qkt.hub import CandleHub
from qkt.osproc import read_int_file
from qkt.supervisor.daemonconfig import DaemonConfig
from qkt.supervisor.errors import NoFreePortError, WorkerStartError
from qkt.supervisor.handle import WorkerHandle
from qkt.supervisor.logs import read_tail
from qkt.supervisor.probe import WorkerProbe
from qkt.supervisor.process import Reaper, describe_exit, signal_process
from qkt.supervisor.riskconfig import risk_spec_fields
from qkt.supervisor.spawn import Spawner
from qkt.worker.spec import WorkerSpec

log = logging.getLogger(__name__)

_POLL_S: Final = 0.1  # staged stop: how often to look whether the process is gone
_KILL_WAIT_S: Final = 5.0  # how long a SIGKILLed process may take to be reaped


class WorkerProcesses:
    """Starts, watches and ends the processes of the registry's handles."""

    def __init__(
        self,
        config: DaemonConfig,
        hub: CandleHub,
        spawner: Spawner,
        reaper: Reaper,
        probe: WorkerProbe,
    ) -> None:
        self._config = config
        self._workers = config.workers
        self._hub = hub
        self._spawner = spawner
        self._reaper = reaper
        self._probe = probe
        self._reserved_ports: set[int] = set()
        # Starting a worker costs a core for a while (fork, compile, journal, warm-up): however
        # many deploys and restarts are due, only this many start at once.
        self._starting = asyncio.Semaphore(config.spawn_concurrency)

    def exit_code(self, handle: WorkerHandle) -> int | None:
        """The exit code of the handle's process if it has ended (and is now reaped)."""
        return None if handle.pid is None else self._reaper.claim(handle.pid, reap=False)

    async def start(self, handle: WorkerHandle, taken: set[int], warmup: int = 500) -> int:
        """Spawn the worker and wait until it answers `/health`; the port it reports. At most
        `spawn_concurrency` starts run at once; the others wait their turn here. `warmup`: past
        candles per key it asks the hub for (the history its program needs)."""
        d = handle.deployment
        assert d.source is not None, "a deployment runs the source it was deployed with"
        port = self._pick_port(taken, d.port)
        endpoints = self._hub.endpoints
        spec = WorkerSpec(
            name=d.name,
            file=d.file,
            source=d.source,
            state_dir=str(self._config.state.root),
            hub_pub=endpoints.pub,
            hub_snapshot=endpoints.snapshot,
            bind=self._workers.bind,
            port=port,
            balance=d.balance,
            fee_bps=d.fee_bps,
            slippage_bps=d.slippage_bps,
            sim=d.sim,
            parent_pid=os.getpid(),
            token_file=str(self._config.state.control_token),
            **risk_spec_fields(d, self._config.risk),
            warmup=warmup,
        )
        spec.port_file.parent.mkdir(parents=True, exist_ok=True)
        spec.port_file.unlink(missing_ok=True)  # a stale one would look like readiness
        handle.spec = spec
        if port:
            self._reserved_ports.add(port)
        try:
            async with self._starting:
                handle.spawned(await self._spawner.spawn(spec))
                return await self._wait_ready(handle, spec)
        finally:
            self._reserved_ports.discard(port)

    def _pick_port(self, taken: set[int], preferred: int | None) -> int:
        """The strategy's previous port if it is free, else a free port of `--worker-ports` not
        in `taken`, or 0 (ephemeral) without a range."""
        ports = self._workers.ports
        taken = self._reserved_ports | taken
        if (
            preferred
            and preferred not in taken
            and (ports is None or preferred in ports)
            and _bindable(self._workers.bind, preferred)
        ):
            return preferred
        if ports is None:
            return 0
        for port in ports:
            if port not in taken and _bindable(self._workers.bind, port):
                return port
        raise NoFreePortError(f"every worker port in {ports} is taken; stop a strategy first")

    async def _wait_ready(self, handle: WorkerHandle, spec: WorkerSpec) -> int:
        assert handle.pid is not None
        deadline = time.monotonic() + self._workers.ready_timeout_s
        while True:
            code = self._reaper.claim(handle.pid)
            if code is not None:
                handle.pid, handle.exit_code = None, code
                raise WorkerStartError(
                    f"{handle.name} {describe_exit(code)} before it was ready{self._tail(handle)}"
                )
            port = read_int_file(spec.port_file)
            if port is not None and await self._probe.healthy(port, timeout_s=1.0):
                return port
            if time.monotonic() > deadline:
                raise WorkerStartError(
                    f"{handle.name} did not answer /health within "
                    f"{self._workers.ready_timeout_s:g} s, so it was stopped{self._tail(handle)}"
                )
            await asyncio.sleep(0.05)

    def _tail(self, handle: WorkerHandle) -> str:
        lines = self.last_log(handle, 3)
        return f"; its log ends: {' | '.join(lines)}" if lines else ""

    def last_log(self, handle: WorkerHandle, count: int) -> tuple[str, ...]:
        """The last `count` non-blank lines of the strategy's log."""
        with contextlib.suppress(OSError):
            lines, _ = read_tail(self._config.state.log_file(handle.name), count)
            return tuple(line.strip() for line in lines if line.strip())
        return ()

    async def terminate(self, handle: WorkerHandle, flatten: bool, timeout_ms: int | None) -> int:
        """SIGTERM (or `POST /stop?flatten=true`), poll, SIGKILL the group, reap."""
        pid = handle.pid
        assert pid is not None
        grace = (self._workers.stop_timeout_ms if timeout_ms is None else timeout_ms) / 1000
        asked = flatten and handle.port is not None
        if asked:
            assert handle.port is not None
            asked = await self._probe.request_stop(handle.port, flatten=True)
        if not asked:
            signal_process(pid, signal.SIGTERM)
        code = await self._wait_exit(pid, grace)
        if code is None:
            log.warning("%s did not stop within %.1f s: SIGKILL", handle.name, grace)
            code = await self.kill(handle)
        else:
            signal_process(pid, signal.SIGKILL, group=True)  # anything it left in its session
        handle.pid, handle.port, handle.exit_code = None, None, code
        if handle.spec is not None:
            handle.spec.port_file.unlink(missing_ok=True)  # the port is not served any more
        return code

    async def kill(self, handle: WorkerHandle) -> int:
        """SIGKILL the worker's process group and reap it."""
        pid = handle.pid
        assert pid is not None
        signal_process(pid, signal.SIGKILL, group=True) or signal_process(pid, signal.SIGKILL)
        code = await self._wait_exit(pid, _KILL_WAIT_S)
        if code is None:
            log.error("%s (pid %d) was not reaped after SIGKILL", handle.name, pid)
            code = -signal.SIGKILL
        handle.pid, handle.port, handle.exit_code = None, None, code
        return code

    async def _wait_exit(self, pid: int, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._reaper.claim(pid)
            if code is not None or time.monotonic() >= deadline:
                return code
            await asyncio.sleep(_POLL_S)


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
