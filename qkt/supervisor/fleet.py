"""Fleet: the registry's bookkeeping of its workers between requests: hub keys, crashes and
restarts (with the brake and the watchdog), and deployments.json.

`FleetQueries` (fleetqueries.py: handles, statuses, figures) builds on it, and `Registry`
(registry.py: deploy, stop) on that; all run on the daemon's event loop only.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Iterable
from typing import Final

from qkt.errors import QktError
from qkt.hub import CandleHub
from qkt.notify import Event
from qkt.supervisor import deployments
from qkt.supervisor.brake import RestartBrake
from qkt.supervisor.daemonconfig import DaemonConfig
from qkt.supervisor.errors import OutOfResourcesError, resource_error
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.lifecycle import WorkerProcesses
from qkt.supervisor.probe import WorkerProbe
from qkt.supervisor.process import Reaper, describe_exit, signal_process
from qkt.supervisor.spawn import Spawner
from qkt.supervisor.warmth import KeyNeeds
from qkt.supervisor.watchdog import Liveness, Watchdog

log = logging.getLogger(__name__)

WATCH_INTERVAL_S: Final = 1.0  # how often the watchdog reads the heartbeats


class Fleet:
    """The handles of one daemon, their keys, crashes and restarts, and their saved record."""

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
        self._liveness = Liveness(config.state, Watchdog(config.workers.hang_timeout_s))
        self._brake = RestartBrake(config.brake)
        self._next_look = 0.0
        self._stopped = set(stopped)  # stopped with `qkt stop`: --load-dir leaves them stopped
        self._emit = emit or (lambda event: None)  # alerts (qkt.supervisor.alerts); never blocks
        # The history each strategy's keys need; whether they are warm, stale.
        self.needs = KeyNeeds(hub, config.history_wait_s)

    # -- hub keys ----------------------------------------------------------------------------

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

    def _ports_taken(self, name: str) -> set[int]:
        """Ports in use, or remembered, by every strategy but `name` (which may reuse its own)."""
        return {
            port
            for h in self._handles.values()
            if h.name != name
            for port in (h.port, h.deployment.port)
            if port
        }

    # -- watching: the tick ------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Reap running workers; restart crashed ones whose backoff is over (brake permitting);
        once a second, ask the watchdog which have stopped beating."""
        for handle in list(self._handles.values()):
            if handle.task is not None:
                continue  # a deploy or restart is in charge of this handle
            if handle.state is WorkerState.RUNNING:
                assert handle.pid is not None
                code = self._processes.exit_code(handle)
                if code is not None:
                    self._crashed(handle, code)
            elif (
                handle.state is WorkerState.BACKOFF
                and handle.restart_at is not None
                and now >= handle.restart_at
                and self._brake.allows(now)
            ):
                handle.restart()
                handle.task = asyncio.get_running_loop().create_task(
                    self._restart(handle), name=f"restart-{handle.name}"
                )
        if now >= self._next_look:
            self._next_look = now + WATCH_INTERVAL_S
            self._look(now)

    def _look(self, now: float) -> None:
        """Kill the running workers the watchdog finds hung (the reaper then sees the exit)."""
        running = [
            h for h in self._handles.values() if h.state is WorkerState.RUNNING and h.task is None
        ]
        for handle in self._liveness.look(running, now):
            assert handle.pid is not None
            signal_process(handle.pid, signal.SIGKILL, group=True)

    @property
    def restarts_paused(self) -> str | None:
        """Why automatic restarts are paused (the brake), or None."""
        return self._brake.reason

    @property
    def workers_late(self) -> int:
        """Running workers late with their heartbeat at the watchdog's last look."""
        return self._liveness.late

    def _crashed(self, handle: WorkerHandle, code: int, reason: str | None = None) -> None:
        """Record a crash and either plan a restart or give up (policy)."""
        hung = handle.error if handle.hung else None
        reason = reason or hung or describe_exit(code)
        now = time.monotonic()
        self._brake.crashed(now)
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
        except Exception as error:  # every restart ends in a known state, whatever went wrong
            reason = error.message if isinstance(error, QktError) else describe_failure(error)
            if not isinstance(error, QktError):
                log.exception("restarting %s failed", handle.name)
                reason = f"could not restart: {reason}"
            code = handle.exit_code if handle.pid is None else await self._processes.kill(handle)
            handle.task = None
            self._crashed(handle, code if code is not None else 1, reason)
            return
        finally:
            handle.task = None
        handle.ready(port)
        self._liveness.watch(handle)
        self.save()
        log.info("restarted %s (pid %s, port %s)", handle.name, handle.pid, handle.port)
        self._emit(Event.restart(handle.name, handle.restarts))

    async def _keep_failed(self, handle: WorkerHandle, error: Exception) -> None:
        """A deploy at start that did not start: keep it, as a crash the policy restarts."""
        reason = error.message if isinstance(error, QktError) else describe_failure(error)
        code = handle.exit_code if handle.pid is None else await self._processes.kill(handle)
        handle.task = None
        self._crashed(handle, code if code is not None else 1, reason)
        self.save()

    # -- persistence -------------------------------------------------------------------------

    def _record_stop(self, name: str) -> None:
        """Write deployments.json as it will be once `name` is stopped; a named error if the
        disk will not take it."""
        kept = [
            h.deployment
            for h in self._handles.values()
            if h.state is not WorkerState.STARTING and h.name != name
        ]
        others = {h.name for h in self._handles.values() if h.name != name}
        stopped = (self._stopped | {name}) - others
        try:
            deployments.save(self._config.state.deployments, kept, stopped)
        except OSError as error:
            raise OutOfResourcesError(
                f"{name} was not stopped: the stop could not be recorded "
                f"({describe_failure(error)}); free the disk and stop it again"
            ) from None

    def save(self) -> None:
        """Write deployments.json from the registry (atomic)."""
        kept = [h.deployment for h in self._handles.values() if h.state is not WorkerState.STARTING]
        deployments.save(self._config.state.deployments, kept, self._stopped - set(self._handles))


def describe_failure(error: Exception) -> str:
    """An unexpected failure in words (an OSError by its errno's text: `No space left ...`)."""
    named = resource_error(error) if isinstance(error, OSError) else None
    if named is not None:
        return named.message
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return f"{type(error).__name__}: {error}"
