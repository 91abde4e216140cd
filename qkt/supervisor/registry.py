"""Registry, the arbiter: name -> WorkerHandle; deploy, stop, crash detection, restarts.

Every method runs on the daemon's event loop; a handle changes only here. A request that fails
leaves the registry as it found it: a deploy that cannot finish kills what it spawned, releases
the hub keys it took and forgets the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from qkt.dsl import Program, compile_bytes
from qkt.errors import ConflictError, InvalidNameError, NotFoundError, QktError
from qkt.hub import CandleHub
from qkt.inputs import read_strategy_file
from qkt.notify import Event
from qkt.records import decode, to_json
from qkt.supervisor import deployments
from qkt.supervisor.config import DaemonConfig
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.errors import BusyError
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.lifecycle import WorkerProcesses
from qkt.supervisor.probe import WorkerProbe
from qkt.supervisor.process import Reaper, describe_exit, signal_process
from qkt.supervisor.records import (
    DaemonRecord,
    ListEntry,
    RunningStatus,
    StopResult,
    StrategyStatus,
)
from qkt.supervisor.spawn import Spawner
from qkt.supervisor.warmth import KeyNeeds, is_stale, warming_text

log = logging.getLogger(__name__)

# `logs/daemon.log` is the daemon's own log: a strategy of that name would write into it.
RESERVED_NAMES: Final = frozenset({"daemon"})


class Registry:
    """The deployed strategies of one daemon and the processes that run them."""

    def __init__(
        self,
        config: DaemonConfig,
        hub: CandleHub,
        spawner: Spawner,
        reaper: Reaper,
        probe: WorkerProbe,
        stopped: Iterable[str] = (),
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self._config = config
        self._workers = config.workers
        self._hub = hub
        self._probe = probe
        self._processes = WorkerProcesses(config, hub, spawner, reaper, probe)
        self._handles: dict[str, WorkerHandle] = {}
        self._pings: set[asyncio.Task[None]] = set()
        self._stopped = set(stopped)  # stopped with `qkt stop`: --load-dir leaves them stopped
        self._emit = emit or (lambda event: None)  # alerts (qkt.supervisor.alerts); never blocks
        self.needs = KeyNeeds(
            hub, config.history_wait_s
        )  # history each strategy's keys need; warm, stale

    # -- queries -----------------------------------------------------------------------------

    def get(self, name: str) -> WorkerHandle:
        """The handle of `name`, or NotFoundError."""
        handle = self._handles.get(name)
        if handle is None:
            raise NotFoundError(f"no strategy named {name!r} is deployed (see `qkt list`)")
        return handle

    def handles(self) -> list[WorkerHandle]:
        """Every handle, sorted by name."""
        return [self._handles[name] for name in sorted(self._handles)]

    def __contains__(self, name: object) -> bool:
        return name in self._handles

    def entry(self, handle: WorkerHandle) -> ListEntry:
        """The `GET /list` entry of `handle`, with its keys' feeds (`stale`, `warming`)."""
        feeds = self.needs.feeds(handle.name)
        return replace(handle.entry(), stale=is_stale(feeds), warming=warming_text(feeds))

    async def refresh(self) -> None:
        """Ask every running worker for its `/status` to update the trade counts (bounded)."""
        running = [h for h in self._handles.values() if h.state is WorkerState.RUNNING]
        await asyncio.gather(*(self._fetch_status(h) for h in running), return_exceptions=True)

    async def _fetch_status(self, handle: WorkerHandle) -> dict[str, Any]:
        """The worker's `/status` as it sent it (parsed into a record by `status_of`)."""
        assert handle.port is not None
        status = await self._probe.status(handle.port)
        trades = status.get("trades")
        if isinstance(trades, int) and not isinstance(trades, bool):
            handle.trades = trades
        return status

    async def status_of(self, name: str) -> StrategyStatus:
        """The worker's own `/status`, with the daemon's view; the daemon's record otherwise."""
        handle = self.get(name)
        if handle.state is WorkerState.RUNNING and handle.port is not None:
            try:
                status = await self._fetch_status(handle)
                feeds = self.needs.feeds(name)
                ours = {
                    "state": handle.state.value,
                    "restarts": handle.restarts,
                    "port": handle.port,
                    "file_changed": handle.source_check().file_changed,
                    **self.needs.flags(feeds),
                    "feeds": [to_json(feed) for feed in feeds],
                }
                return decode(RunningStatus, {**status, **ours})
            except Exception as error:  # any failure to answer is reported, not raised
                return replace(self._record(handle), error=f"{name} did not answer: {error!r}")
        return self._record(handle)

    def _record(self, handle: WorkerHandle) -> DaemonRecord:
        feeds = self.needs.feeds(handle.name)
        return replace(
            handle.record(), stale=is_stale(feeds), warming=warming_text(feeds), feeds=feeds
        )

    def stopped_by_user(self, name: str) -> bool:
        """True if `name` was stopped with `qkt stop` and not deployed since."""
        return name in self._stopped

    def log_file(self, name: str) -> Path:
        """The log of `name`: deployed now, or deployed before (its log is still there)."""
        path = self._config.state.log_file(name)
        if name not in self._handles and (name in RESERVED_NAMES or not path.exists()):
            raise NotFoundError(f"no strategy named {name!r} is deployed (see `qkt list`)")
        return path

    # -- deploy ------------------------------------------------------------------------------

    async def deploy(self, deployment: Deployment, *, warm: bool = False) -> WorkerHandle:
        """Compile, acquire hub keys with the history they need, wait (bounded) for it, spawn,
        wait until ready; undo everything on failure.

        A deployment without its source (a new deploy) reads the file here, once; one with it
        (from deployments.json) runs that text, whatever the file holds now. `warm`
        (`--require-warm`): fail with NotWarmError, deploying nothing, unless every key has
        the history the program needs.
        """
        name = deployment.name
        if name in RESERVED_NAMES:
            raise InvalidNameError(f"{name!r} is reserved for the daemon's own log; pick another")
        if name in self._handles:
            state = self._handles[name].state.value
            raise ConflictError(
                f"a strategy named {name!r} is already deployed ({state}): stop it first with "
                f"`qkt stop {name}`, or deploy under another name with --as"
            )
        try:
            deployment, program = _compile(deployment)
        except QktError as error:
            self._emit(Event.deploy_failed(name, error.message))
            raise
        handle = WorkerHandle(deployment, program.keys)
        self._handles[name] = handle  # the name is taken from here on (a second deploy gets 409)
        self.needs.set(name, program.history_needed())
        handle.task = asyncio.current_task()
        try:
            self._acquire(handle)
            await self.needs.settle(name, handle.keys, warm=warm)
            port = await self._processes.start(
                handle, self._ports_taken(name), warmup=self.needs.warmup(name)
            )
        except BaseException as error:
            await self._discard(handle)
            if isinstance(error, QktError):
                self._emit(Event.deploy_failed(name, error.message))
            raise
        finally:
            handle.task = None
        handle.ready(port)
        self._stopped.discard(name)
        self.save()
        self._emit(Event.deploy(name, deployment.file))
        log.info(
            "deployed %s (pid %s, port %s, keys %s)",
            name,
            handle.pid,
            handle.port,
            ", ".join(map(str, handle.keys)),
        )
        return handle

    def _acquire(self, handle: WorkerHandle) -> None:
        taken = []
        try:
            for key in handle.keys:
                self._hub.acquire(key, history=self.needs.acquire_count(handle.name, key))
                taken.append(key)
        except BaseException:
            for key in taken:
                self._hub.release(key)
            raise
        handle.keys_held = True

    def _release(self, handle: WorkerHandle) -> None:
        if not handle.keys_held:
            return
        handle.keys_held = False
        for key in handle.keys:
            try:
                self._hub.release(key)
            except Exception:
                log.exception("releasing %s for %s failed", key, handle.name)

    async def _discard(self, handle: WorkerHandle) -> None:
        """Undo a deploy that did not finish: kill, reap, release keys, forget the name."""
        if handle.pid is not None:
            await self._processes.kill(handle)
        self._release(handle)
        if self._handles.get(handle.name) is handle:
            del self._handles[handle.name]
            self.needs.forget(handle.name)

    def _ports_taken(self, name: str) -> set[int]:
        """Ports in use, or remembered, by every strategy but `name` (which may reuse its own)."""
        return {
            port
            for h in self._handles.values()
            if h.name != name
            for port in (h.port, h.deployment.port)
            if port
        }

    # -- stop --------------------------------------------------------------------------------

    async def stop(
        self, name: str, *, flatten: bool = False, timeout_ms: int | None = None
    ) -> StopResult:
        """Staged stop of `name`, release its keys and forget it."""
        handle = self.get(name)
        if handle.state is WorkerState.STARTING:
            raise BusyError(f"{name} is still starting; stop it once it is running")
        if handle.state is WorkerState.STOPPING:
            raise BusyError(f"{name} is already stopping")
        code = await self._stop_one(handle, flatten, timeout_ms)
        del self._handles[name]
        self.needs.forget(name)
        self._emit(Event.stop(name, flatten=flatten))
        self._stopped.add(name)
        self.save()
        log.info("stopped %s (%s)", name, "no process" if code is None else describe_exit(code))
        return StopResult(name, "stopped", code)

    async def _stop_one(
        self, handle: WorkerHandle, flatten: bool, timeout_ms: int | None
    ) -> int | None:
        """stopping -> (cancel a start in flight, staged stop, release keys) -> stopped."""
        handle.stopping()
        await _cancel(handle.task)
        code = handle.exit_code
        if handle.pid is not None:
            code = await self._processes.terminate(handle, flatten, timeout_ms)
        self._release(handle)
        handle.stopped(code)
        return code

    async def stop_all(self, timeout_ms: int) -> None:
        """Stop every worker at once (daemon shutdown); deployments.json keeps them all."""
        for task in self._pings:
            task.cancel()
        handles = [
            h
            for h in self._handles.values()
            if h.state not in (WorkerState.STOPPING, WorkerState.STOPPED)  # a `qkt stop` has it
        ]
        await asyncio.gather(
            *(self._stop_one(h, False, timeout_ms) for h in handles), return_exceptions=True
        )

    # -- watching: the tick ------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Reap and ping running workers; restart crashed ones whose backoff is over."""
        for handle in list(self._handles.values()):
            if handle.task is not None:
                continue  # a deploy or restart is in charge of this handle
            if handle.state is WorkerState.RUNNING:
                assert handle.pid is not None
                code = self._processes.exit_code(handle)
                if code is not None:
                    self._crashed(handle, code)
                elif now >= handle.next_ping:
                    handle.next_ping = now + self._workers.ping_interval_s
                    self._background(self._ping(handle))
            elif (
                handle.state is WorkerState.BACKOFF
                and handle.restart_at is not None
                and now >= handle.restart_at
            ):
                handle.restart()
                handle.task = asyncio.get_running_loop().create_task(
                    self._restart(handle), name=f"restart-{handle.name}"
                )

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._pings.add(task)
        task.add_done_callback(self._pings.discard)

    async def _ping(self, handle: WorkerHandle) -> None:
        """Liveness is answering: enough missed `/health` pings in a row and it is killed."""
        pid, port = handle.pid, handle.port
        if port is None:
            return
        ok = await self._processes.healthy(port)
        if handle.state is not WorkerState.RUNNING or handle.pid != pid or pid is None:
            return
        if ok:
            handle.ping_failures = 0
            return
        handle.ping_failures += 1
        if handle.ping_failures >= self._workers.ping_failures:
            log.error(
                "%s did not answer %d health pings: killing it", handle.name, handle.ping_failures
            )
            handle.error = f"stopped answering /health ({handle.ping_failures} pings); killed"
            signal_process(pid, signal.SIGKILL, group=True)

    def _crashed(self, handle: WorkerHandle, code: int, reason: str | None = None) -> None:
        """Record a crash and either plan a restart or give up (policy)."""
        hung = handle.error if handle.ping_failures >= self._workers.ping_failures else None
        reason = reason or hung or describe_exit(code)
        now = time.monotonic()
        policy = self._config.restart
        handle.crashed(code, self._processes.last_log(handle, self._workers.log_tail), now)
        self._emit(Event.crash(handle.name, code, handle.last_log))
        handle.crashes = policy.recent(handle.crashes, now)
        delay = policy.delay(handle.crashes, now)
        if delay is None:
            handle.give_up(
                f"{reason}; crashed {len(handle.crashes)} times, more than the restart policy "
                f"allows ({policy.describe()}): not restarting it (`qkt logs {handle.name}`, "
                f"then `qkt stop {handle.name}` and deploy again)"
            )
            self._release(handle)
            log.error("%s %s", handle.name, handle.error)
            self._emit(Event.gave_up(handle.name, len(handle.crashes)))
            return
        handle.back_off(now + delay, reason)
        log.warning("%s %s; restarting in %.1f s", handle.name, reason, delay)

    async def _restart(self, handle: WorkerHandle) -> None:
        """backoff -> restarting (done by the tick) -> running, or crashed again."""
        try:
            warmup = self.needs.warmup(handle.name)
            port = await self._processes.start(
                handle, self._ports_taken(handle.name), warmup=warmup
            )
        except asyncio.CancelledError:
            if handle.pid is not None:
                await self._processes.kill(handle)
            raise
        except QktError as error:
            code = handle.exit_code if handle.pid is None else await self._processes.kill(handle)
            handle.task = None
            self._crashed(handle, code if code is not None else 1, error.message)
            return
        finally:
            handle.task = None
        handle.ready(port)
        self.save()
        log.info("restarted %s (pid %s, port %s)", handle.name, handle.pid, handle.port)
        self._emit(Event.restart(handle.name, handle.restarts))

    # -- persistence -------------------------------------------------------------------------

    def save(self) -> None:
        """Write deployments.json from the registry (atomic)."""
        kept = [h.deployment for h in self._handles.values() if h.state is not WorkerState.STARTING]
        deployments.save(self._config.state.deployments, kept, self._stopped - set(self._handles))


def _compile(deployment: Deployment) -> tuple[Deployment, Program]:
    """Compile what `deployment` runs: its saved source, else the file, read now and kept."""
    if deployment.source is None:
        data = read_strategy_file(deployment.file)
        program = compile_bytes(data, deployment.file)
        deployment = deployment.with_source(data.decode("utf-8"))  # it compiled: valid UTF-8
    else:
        program = compile_bytes(deployment.source.encode("utf-8"), deployment.file)
    if deployment.sim:
        program = program.with_broker("SIM")
    return deployment, program


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done() or task is asyncio.current_task():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
