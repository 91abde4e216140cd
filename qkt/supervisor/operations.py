"""The life-cycle verbs over a registry: restart, replace, stop or restart every strategy,
remove a stopped one, and the listing that includes stopped ones (`qkt list -a`).

Each is a sequence of the registry's own steps (stop, deploy, forget), so every guarantee of
those (staged stop, undo on a failed deploy, deployments.json kept) holds here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from qkt.dsl import compile_bytes
from qkt.errors import ConflictError, NotFoundError, QktError
from qkt.inputs import read_strategy_file
from qkt.paths import StateDir
from qkt.supervisor import archive
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.figures import HistoryEntry, RemoveResult
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.records import StopResult
from qkt.supervisor.registry import Registry

T = TypeVar("T")


async def deploy(
    registry: Registry,
    state: StateDir,
    deployment: Deployment,
    *,
    replace: bool = False,
    keep_state: bool = False,
    resume: bool = False,
    fresh: bool = False,
    warm: bool = False,
) -> WorkerHandle:
    """Deploy, with the user's choices for a name in use (`replace`, `keep_state`) or a name
    whose books came from another deployment (`resume`, `fresh`); `warm`: `--require-warm`."""
    name = deployment.name
    if keep_state and not replace:
        raise ConflictError("--keep-state goes with --replace (to keep the books, use --resume)")
    if replace and (resume or fresh):
        raise ConflictError("--replace chooses the books itself: keep them with --keep-state")
    if name in registry:
        if not replace:
            state_name = registry.get(name).state.value
            raise ConflictError(
                f"a strategy named {name!r} is already deployed ({state_name}): stop it first "
                f"with `qkt stop {name}`, replace it with `qkt deploy FILE --as {name} "
                "--replace`, or deploy under another name with --as"
            )
        deployment = _compiled(deployment)  # a file that does not compile stops nothing
        # Both versions cannot run at once (one journal, one name): stop, then start.
        await registry.stop(name)
    if replace:
        if not keep_state:
            archive.archive_books(state, name)
    else:
        archive.check_reuse(state, deployment, resume=resume, fresh=fresh)
    return await registry.deploy(deployment, warm=warm)


def _compiled(deployment: Deployment) -> Deployment:
    """`deployment` with its source read and compiled now (DSL errors raise here)."""
    if deployment.source is not None:
        return deployment
    data = read_strategy_file(deployment.file)
    compile_bytes(data, deployment.file)
    return deployment.with_source(data.decode("utf-8"))


async def stop_every(
    registry: Registry, *, flatten: bool = False, timeout_ms: int | None = None
) -> list[StopResult]:
    """Stop every deployed strategy at once (`qkt stop --all`); those already stopping are left
    to the stop in flight."""
    names = [h.name for h in registry.handles() if h.state is not WorkerState.STOPPING]
    return await _each(names, lambda n: registry.stop(n, flatten=flatten, timeout_ms=timeout_ms))


async def restart_every(registry: Registry, *, timeout_ms: int | None = None) -> list[WorkerHandle]:
    """Restart every deployed strategy (`qkt restart --all`), all at once."""
    names = [h.name for h in registry.handles() if h.state is not WorkerState.STOPPING]
    return await _each(names, lambda n: registry.restart(n, timeout_ms))


async def _each(names: list[str], act: Callable[[str], Awaitable[T]]) -> list[T]:
    """`act` on every name concurrently; every one is tried, then the first failure raises."""
    found = await asyncio.gather(*(act(name) for name in names), return_exceptions=True)
    failures = [f for f in found if isinstance(f, BaseException)]
    for failure in failures:
        if not isinstance(failure, QktError):
            raise failure
    if failures:
        done = [n for n, f in zip(names, found, strict=True) if not isinstance(f, BaseException)]
        first = failures[0]
        assert isinstance(first, QktError)
        raise type(first)(f"{first.message} (done: {', '.join(done) or 'none'})")
    return [f for f in found if not isinstance(f, BaseException)]


def remove(registry: Registry, state: StateDir, name: str, *, purge: bool = False) -> RemoveResult:
    """Forget a stopped strategy (`qkt rm`): off `qkt list -a`, its books archived or deleted."""
    known = (
        name in archive.load_retired(state)
        or registry.stopped_by_user(name)
        or state.strategy_dir(name).exists()
        or state.log_file(name).exists()
    )
    if name in registry:
        registry.forget(name)  # raises: it must be stopped first
    if not known:
        raise NotFoundError(
            f"no strategy named {name!r} is deployed or stopped (see `qkt list -a`)"
        )
    registry.forget(name)
    where = archive.archive_books(state, name, purge=purge)
    return RemoveResult(name, None if where is None else str(where))


def history(registry: Registry, state: StateDir) -> list[HistoryEntry]:
    """Every deployed strategy, then every stopped one not removed, sorted by name."""
    rows = {}
    for handle in registry.handles():
        entry, figures = handle.entry(), registry.figures.get(handle.name)
        rows[handle.name] = HistoryEntry(
            name=entry.name,
            state=entry.state,
            file=entry.file,
            pid=entry.pid,
            port=entry.port,
            uptime_ms=entry.uptime_ms,
            restarts=entry.restarts,
            trades=entry.trades,
            equity=None if figures is None else figures.equity,
            realized=None if figures is None else figures.realized,
            unrealized=None if figures is None else figures.unrealized,
            total_pnl=None if figures is None else figures.total_pnl,
            exit_code=entry.exit_code,
            stopped_at=None,
            error=entry.error,
        )
    for name, gone in archive.load_retired(state).items():
        if name in rows:
            continue
        figures = gone.figures
        rows[name] = HistoryEntry(
            name=name,
            state="stopped",
            file=gone.file,
            pid=None,
            port=None,
            uptime_ms=0,
            restarts=0,
            trades=None if figures is None else figures.trades,
            equity=None if figures is None else figures.equity,
            realized=None if figures is None else figures.realized,
            unrealized=None if figures is None else figures.unrealized,
            total_pnl=None if figures is None else figures.total_pnl,
            exit_code=gone.exit_code,
            stopped_at=gone.stopped_at,
            error=None,
        )
    return [rows[name] for name in sorted(rows)]
