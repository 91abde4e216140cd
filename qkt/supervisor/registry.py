"""Registry, the arbiter: name -> WorkerHandle; deploy, stop, crash detection, restarts.

Every method runs on the daemon's event loop; a handle changes only here. A request that fails
leaves the registry as it found it: a deploy that cannot finish kills what it spawned, releases
the hub keys it took and forgets the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from qkt.dsl import Program, compile_bytes
from qkt.errors import ConflictError, InvalidNameError, NotFoundError, QktError
from qkt.hub import CandleHub
from qkt.inputs import read_strategy_file
from qkt.notify import Event
from qkt.records import decode, to_json
from qkt.supervisor import archive
from qkt.supervisor.config import DaemonConfig
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.errors import BusyError, resource_error
from qkt.supervisor.figures import LastFigures, figures_from_beat, figures_of
from qkt.supervisor.fleet import Fleet
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.probe import WorkerProbe
from qkt.supervisor.process import Reaper, describe_exit
from qkt.supervisor.records import (
    DaemonRecord,
    ListEntry,
    RunningStatus,
    StopResult,
    StrategyStatus,
)
from qkt.supervisor.spawn import Spawner
from qkt.supervisor.statuses import StatusCache
from qkt.supervisor.warmth import is_stale, warming_text

log = logging.getLogger(__name__)

# `logs/daemon.log` is the daemon's own log: a strategy of that name would write into it.
RESERVED_NAMES: Final = frozenset({"daemon"})
# A worker stores figures in its heartbeat file at once when ready: one running longer without
# any stores none (an older qkt's), and is asked its /status instead.
_FIRST_FIGURES_MS: Final = 10_000
# A stop asks the worker for its final figures first, for at most this long (a hung worker
# must not slow its own stop down much).
_FINAL_FIGURES_S: Final = 1.0


class Registry(Fleet):
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
        super().__init__(config, hub, spawner, reaper, probe, stopped, emit)
        self._statuses = StatusCache(self.status_of, self.handles)
        # Each worker's last figures (`read_figures`, `/status`): `/metrics` and `list -a` read
        # these. And those of its heartbeat file, with their text: unchanged, not decoded again.
        self.figures: dict[str, LastFigures] = {}
        self._beat_figures: dict[str, tuple[bytes, LastFigures]] = {}

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

    async def status_all(self) -> list[StrategyStatus]:
        """Every strategy's status, from the cache (`StatusCache`): never N requests a call.
        Asking it also brings the workers' figures (`self.figures`, for `/metrics` and `list
        -a`) up to date."""
        return await self._statuses.all()

    def read_figures(self) -> dict[str, LastFigures]:
        """Every running worker's figures as its heartbeat file holds them (memory reads, no
        request); also kept in `self.figures` where newer than what a `/status` brought."""
        found: dict[str, LastFigures] = {}
        for handle in self._handles.values():
            reader = handle.heartbeat
            if handle.state is not WorkerState.RUNNING or reader is None:
                continue
            text, cached = reader.figures(), self._beat_figures.get(handle.name)
            if text is not None and (cached is None or cached[0] != text):
                decoded = figures_from_beat(text)
                if decoded is not None:
                    cached = self._beat_figures[handle.name] = (text, decoded)
            if cached is None:
                continue
            found[handle.name] = figures = cached[1]
            known = self.figures.get(handle.name)
            if known is None or figures.at_ms >= known.at_ms:
                self.figures[handle.name] = figures
        return found

    async def current_figures(self) -> dict[str, LastFigures]:
        """`read_figures`, and a `/status` of the running workers that stored none in their
        first seconds (a worker of an older qkt; `StatusCache` bounds how many a call asks).
        A worker stores its first figures as soon as it is ready: a scrape during a deploy of
        hundreds must not send the daemon asking each new one."""
        self.read_figures()
        running = (h for h in self._handles.values() if h.state is WorkerState.RUNNING)
        if any(h.name not in self.figures and h.uptime_ms() > _FIRST_FIGURES_MS for h in running):
            await self.status_all()
        return self.figures

    async def _fetch_status(self, handle: WorkerHandle) -> dict[str, Any]:
        """The worker's `/status` as it sent it (parsed into a record by `status_of`)."""
        assert handle.port is not None
        status = await self._probe.status(handle.port)
        trades = status.get("trades")
        if isinstance(trades, int) and not isinstance(trades, bool):
            handle.trades = trades
        figures = figures_of(status)
        if figures is not None:
            self.figures[handle.name] = figures
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

    async def deploy(
        self, deployment: Deployment, *, keep_on_failure: bool = False, warm: bool = False
    ) -> WorkerHandle:
        """Compile, acquire hub keys with the history they need, wait (bounded) for it, spawn,
        wait until ready; undo everything on failure.

        A deployment without its source (a new deploy) reads the file here, once; one with it
        (from deployments.json) runs that text, whatever the file holds now. Compiling runs in a
        thread: the loop keeps feeding candles and answering meanwhile. With `keep_on_failure`
        (deploys at daemon start), a worker that compiled but did not start stays deployed, as
        a crash: retried by the restart policy, visible with its reason. `warm`
        (`--require-warm`): fail with NotWarmError, deploying nothing, unless every key has
        the history the program needs.
        """
        name = deployment.name
        if name in RESERVED_NAMES:
            raise InvalidNameError(f"{name!r} is reserved for the daemon's own log; pick another")
        self._check_free(name)
        try:
            deployment, program = await asyncio.to_thread(_compile, deployment)
        except QktError as error:
            self._emit(Event.deploy_failed(name, error.message))
            raise
        self._check_free(name)  # another deploy of the name may have come while compiling
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
            if keep_on_failure and isinstance(error, Exception) and handle.keys_held:
                await self._keep_failed(handle, error)
                return handle
            await self._discard(handle)
            if isinstance(error, QktError):
                self._emit(Event.deploy_failed(name, error.message))
            if isinstance(error, asyncio.CancelledError) and handle.state is WorkerState.STOPPING:
                _uncancel()  # cancelled by `qkt stop`: this deploy's answer says so
                raise ConflictError(
                    f"{name} was stopped (qkt stop) while it was starting"
                ) from None
            named = resource_error(error) if isinstance(error, OSError) else None
            if named is not None:
                raise named from None
            raise
        finally:
            handle.task = None
        handle.ready(port)
        self._liveness.watch(handle)
        self._stopped.discard(name)
        self.save()
        archive.remember_books(self._config.state, deployment)
        archive.unretire(self._config.state, name)
        self._emit(Event.deploy(name, deployment.file))
        log.info(
            "deployed %s (pid %s, port %s, keys %s)",
            name,
            handle.pid,
            handle.port,
            ", ".join(map(str, handle.keys)),
        )
        return handle

    def _check_free(self, name: str) -> None:
        if name in self._handles:
            state = self._handles[name].state.value
            raise ConflictError(
                f"a strategy named {name!r} is already deployed ({state}): stop it first with "
                f"`qkt stop {name}`, or deploy under another name with --as"
            )

    async def _discard(self, handle: WorkerHandle) -> None:
        """Undo a deploy that did not finish: kill, reap, release keys, forget the name."""
        if handle.pid is not None:
            await self._processes.kill(handle)
        self._release(handle)
        self._liveness.unwatch(handle)
        if self._handles.get(handle.name) is handle:
            del self._handles[handle.name]
            self.needs.forget(handle.name)

    # -- stop --------------------------------------------------------------------------------

    async def stop(
        self, name: str, *, flatten: bool = False, timeout_ms: int | None = None
    ) -> StopResult:
        """Staged stop of `name`, release its keys and forget it."""
        handle = self.get(name)
        if handle.state is WorkerState.STOPPING:
            raise BusyError(f"{name} is already stopping")
        # Recorded before it is done: a stop that cannot be written (a full disk) stops nothing,
        # rather than a stopped strategy coming back at the next start.
        self._record_stop(name)
        if handle.state is WorkerState.RUNNING and handle.port is not None:
            with contextlib.suppress(Exception):  # its final figures, for `qkt list -a`
                await asyncio.wait_for(self._fetch_status(handle), _FINAL_FIGURES_S)
        code = await self._stop_one(handle, flatten, timeout_ms)  # a start in flight is cancelled
        if self._handles.get(name) is handle:
            del self._handles[name]
            self.needs.forget(name)
        self._stopped.add(name)
        self._emit(Event.stop(name, flatten=flatten))
        try:
            self.save()
        except OSError:
            log.exception("stopped %s, but deployments.json could not be written again", name)
        self._beat_figures.pop(name, None)
        archive.retire(self._config.state, handle.deployment, code, self.figures.pop(name, None))
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
        self._liveness.unwatch(handle)
        handle.stopped(code)
        return code

    async def restart(self, name: str, timeout_ms: int | None = None) -> WorkerHandle:
        """Stop `name` gracefully and start the same deployment (the same source) again."""
        deployment = self.get(name).deployment
        await self.stop(name, timeout_ms=timeout_ms)
        return await self.deploy(deployment)

    def forget(self, name: str) -> None:
        """Drop a stopped strategy from what the daemon remembers (`qkt rm`)."""
        if name in self._handles:
            raise ConflictError(f"{name!r} is deployed: stop it first with `qkt stop {name}`")
        self._stopped.discard(name)
        self.save()
        archive.unretire(self._config.state, name)

    async def stop_all(self, timeout_ms: int) -> None:
        """Stop every worker at once (daemon shutdown); deployments.json keeps them all."""
        await self._statuses.aclose()
        handles = [
            h
            for h in self._handles.values()
            if h.state not in (WorkerState.STOPPING, WorkerState.STOPPED)  # a `qkt stop` has it
        ]
        await asyncio.gather(
            *(self._stop_one(h, False, timeout_ms) for h in handles), return_exceptions=True
        )


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


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done() or task is asyncio.current_task():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
