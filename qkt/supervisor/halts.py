"""`Halts`: the daemon's halt, resume and kill, for one strategy or all (docs/risk.md).

The halt itself lives in each worker (its engine refuses entries, its journal keeps the halt);
the daemon forwards the verb to the worker's `POST /halt|/resume|/kill` and records the halt in
the strategy's deployment (deployments.json), so that a worker started again (after a crash, a
daemon restart, a `kill -9`) is handed it in its spec and applies it if its journal holds none.
A strategy without a process that answers (backoff, crashed, failed) is halted in the record
only, and its next worker starts halted.

Every verb is reachable as `daemon.halts.halt(name, reason, by)`, `resume(name, by)` and
`kill(name, flatten, by)` (name None: all); each reports an event through `emit` (the
notifier's `publish`). `riskwatch.RiskWatch` keeps the records in step with the workers and
enforces the daemon-wide limits through `halt_all`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from qkt.engine import HaltKind, NotHaltedError
from qkt.errors import QktError
from qkt.notify import Event
from qkt.records import RecordError, decode
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.probe import WorkerProbe
from qkt.supervisor.records import HaltResult
from qkt.supervisor.registry import Registry
from qkt.supervisor.riskconfig import RiskSettings
from qkt.supervisor.riskwatch import RiskWatch
from qkt.worker.record import HaltOutcome, HaltRecord

log = logging.getLogger(__name__)

Emit = Callable[[Event], None]
OPERATOR_REASON = "halted by the operator"
KILL_REASON = "killed by the operator"


class WorkerCommandError(QktError):
    """A running worker did not carry out a halt, resume or kill."""

    code = "worker_failed"
    http_status = 502


def _no_event(event: Event) -> None:
    pass


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Halts:
    """Halt, resume and kill by name or for all; see the module docstring."""

    def __init__(self, emit: Emit | None = None, clock: Callable[[], int] = wall_ms) -> None:
        self.emit: Emit = emit or _no_event
        self._clock = clock
        self._registry: Registry | None = None
        self._probe: WorkerProbe | None = None
        self._watch: asyncio.Task[None] | None = None
        self.resumes = 0  # bumped by every resume: the daemon-wide limits measure afresh
        # Per strategy: bumped before and after every verb on it, and the verbs at work on it
        # now. A status read across a verb on *that* strategy is stale; one on another is not.
        self._touched: dict[str, int] = {}
        self._under_way: dict[str, int] = {}
        self.pending: dict[str, HaltRecord] = {}  # recorded while the worker was not running

    def start(self, registry: Registry, probe: WorkerProbe, settings: RiskSettings) -> None:
        """Work on `registry`'s strategies, and watch the daemon-wide limits (riskwatch.py)."""
        self._registry, self._probe = registry, probe
        watch = RiskWatch(self, settings)
        self._watch = asyncio.get_running_loop().create_task(watch.run(), name="risk-watch")

    async def aclose(self) -> None:
        """Stop watching (daemon shutdown)."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    def mark(self, name: str) -> int:
        """Where `name`'s verbs stand now: hand it to `stale` after reading its worker."""
        return self._touched.get(name, 0)

    def stale(self, name: str, mark: int) -> bool:
        """Whether a verb on `name` ran or is running since `mark`: what its worker said in
        between may predate the verb, whose word wins."""
        return self._touched.get(name, 0) != mark or name in self._under_way

    def now_ms(self) -> int:
        """The daemon's clock (epoch ms)."""
        return self._clock()

    @property
    def registry(self) -> Registry:
        assert self._registry is not None, "the daemon is not running"
        return self._registry

    # -- the verbs ---------------------------------------------------------------------------

    async def halt(self, name: str | None, reason: str, by: str) -> HaltResult:
        """No new entries for `name` (None: every strategy); exits still run."""
        return await self.halt_all(self.targets(name), reason, by, HaltKind.OPERATOR)

    async def halt_all(
        self, handles: list[WorkerHandle], reason: str, by: str, kind: HaltKind
    ) -> HaltResult:
        """Halt each of `handles` with `kind` (the operator's, or a daemon-wide limit's)."""
        params = {"reason": reason, "by": by, "kind": kind.value}
        record = HaltRecord(kind.value, reason, by, self._clock(), False)
        result = await self._each(handles, "/halt", params, record)
        for outcome in result.strategies:
            self.emit(Event.halt(outcome.name, reason))
        return result

    async def resume(self, name: str | None, by: str) -> HaltResult:
        """Lift the halt of `name` (409 `not_halted` if it is not halted), or of every halted
        strategy (None)."""
        handles = self.targets(name)
        self.resumes += 1
        result = await self._each(handles, "/resume", {"by": by}, None, strict=name is not None)
        for outcome in result.strategies:
            self.emit(Event.resume(outcome.name))
        return result

    async def kill(
        self, name: str | None, flatten: bool, by: str, reason: str = KILL_REASON
    ) -> HaltResult:
        """Halt, cancel every order and with `flatten` close every position, for `name` or
        every strategy (None); the positions left."""
        params = {"reason": reason, "by": by, "flatten": "true" if flatten else "false"}
        record = HaltRecord(HaltKind.OPERATOR.value, reason, by, self._clock(), True)
        result = await self._each(self.targets(name), "/kill", params, record)
        self.emit(Event.kill(name, flatten=flatten))
        return result

    # -- one worker at a time ----------------------------------------------------------------

    def targets(self, name: str | None) -> list[WorkerHandle]:
        if name is not None:
            return [self.registry.get(name)]  # NotFoundError: nothing changes
        return [h for h in self.registry.handles() if h.state is not WorkerState.STOPPING]

    async def _each(
        self,
        handles: list[WorkerHandle],
        path: str,
        params: dict[str, str],
        record: HaltRecord | None,
        *,
        strict: bool = True,
    ) -> HaltResult:
        """Apply one verb to every handle, all at once; the first failure is raised once the
        others are done (a `kill --all` must not stop at a worker that does not answer)."""
        names = [h.name for h in handles]
        self._touch(names, 1)
        try:
            found = await asyncio.gather(
                *(self._one(h, path, params, record, strict) for h in handles),
                return_exceptions=True,
            )
        finally:
            self._touch(names, -1)
            self.registry.save()
        outcomes = [item for item in found if isinstance(item, HaltOutcome)]
        for item in found:
            if isinstance(item, BaseException):
                raise item
        return HaltResult(sorted(outcomes, key=lambda o: o.name))

    def _touch(self, names: list[str], step: int) -> None:
        """A verb begins (`step` 1) or ends (-1) on `names`."""
        for name in names:
            self._touched[name] = self._touched.get(name, 0) + 1
            under_way = self._under_way.get(name, 0) + step
            if under_way:
                self._under_way[name] = under_way
            else:
                del self._under_way[name]

    async def _one(
        self,
        handle: WorkerHandle,
        path: str,
        params: dict[str, str],
        record: HaltRecord | None,
        strict: bool,
    ) -> HaltOutcome | None:
        name = handle.name
        if not _running(handle):
            if record is None and handle.deployment.halt is None:
                if strict:
                    raise NotHaltedError(f"{name} is not halted: nothing to resume")
                return None
            self.remember(handle, record)
            # A worker being started now was handed its spec already: it gets the halt once
            # it answers (riskwatch.py); one started later gets it in its spec.
            if record is None:
                self.pending.pop(name, None)
            else:
                self.pending[name] = record
            return HaltOutcome(name, record is not None, record, [])
        self.pending.pop(name, None)
        assert self._probe is not None and handle.port is not None
        try:
            status, body = await self._probe.command(handle.port, path, params)
        except (httpx.HTTPError, ValueError) as error:
            raise WorkerCommandError(f"{name} did not answer {path}: {error!r}") from None
        if status >= 400:
            error_body: Any = body.get("error") if isinstance(body, dict) else None
            code = error_body.get("code") if isinstance(error_body, dict) else None
            if code == NotHaltedError.code:
                self.remember(handle, None)
                if strict:
                    raise NotHaltedError(f"{name} is not halted: nothing to resume")
                return None
            raise WorkerCommandError(f"{name} refused {path} ({status}): {body!r}")
        try:
            outcome = decode(HaltOutcome, body)
        except RecordError as error:
            raise WorkerCommandError(f"{name} answered {path} with {error.message}") from None
        self.remember(handle, outcome.halt)
        log.info("%s %s by %s: %s", name, path[1:], params.get("by"), outcome.halt)
        return outcome

    async def reapply(self, handle: WorkerHandle, record: HaltRecord) -> None:
        """Hand a running worker the halt recorded while it was starting."""
        if record.killed:
            params = {"reason": record.reason, "by": record.by, "flatten": "false"}
            await self._each([handle], "/kill", params, record)
        else:
            params = {"reason": record.reason, "by": record.by, "kind": record.kind}
            await self._each([handle], "/halt", params, record)

    def remember(self, handle: WorkerHandle, halt: HaltRecord | None) -> None:
        """Record `halt` in the strategy's deployment (saved by the caller)."""
        if handle.deployment.halt != halt:
            handle.deployment = handle.deployment.halted(halt)


def _running(handle: WorkerHandle) -> bool:
    return handle.state is WorkerState.RUNNING and handle.port is not None
