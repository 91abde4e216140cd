"""Registry, the arbiter: name -> WorkerHandle; deploy, stop, crash detection, restarts.

Every method runs on the daemon's event loop; a handle changes only here. A request that fails
leaves the registry as it found it: a deploy that cannot finish kills what it spawned, releases
the hub keys it took and forgets the name.

The queries (handles, entries, statuses, figures) are `FleetQueries`' (fleetqueries.py), the
bookkeeping between requests (keys, crashes, restarts) `Fleet`'s (fleet.py): Registry builds on
both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

from qkt.dsl import Program, compile_bytes
from qkt.errors import ConflictError, InvalidNameError, QktError
from qkt.inputs import read_strategy_file
from qkt.notify import Event
from qkt.supervisor import archive
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.errors import BusyError, resource_error
from qkt.supervisor.fleetqueries import RESERVED_NAMES as RESERVED_NAMES
from qkt.supervisor.fleetqueries import FleetQueries
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.process import describe_exit
from qkt.supervisor.records import StopResult

log = logging.getLogger(__name__)

# A stop asks the worker for its final figures first, for at most this long (a hung worker
# must not slow its own stop down much).
_FINAL_FIGURES_S: Final = 1.0


class Registry(FleetQueries):
    """The deployed strategies of one daemon and the processes that run them."""

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
