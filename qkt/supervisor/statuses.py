"""StatusCache: the running workers' last `/status`, for `GET /status` of every strategy.

Asking every worker at each call made `qkt status` cost N requests, and with hundreds of workers
a loaded box answered it late or not at all. Now a call answers from the cache at once. It asks
at most `per_call` workers itself (those it has never heard from, so a small daemon's first answer
is complete), and wakes a background refresher that asks the rest one by one at
`refresh_per_s`, and only while someone has been asking within `demand_s`: an idle daemon sends
no status request at all (the trade count of `qkt list` comes with the heartbeats).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.records import StrategyStatus

log = logging.getLogger(__name__)

MAX_AGE_S: Final = 5.0  # a cached status younger than this is not asked again
PER_CALL: Final = 16  # workers one call may ask itself (never heard from yet)
REFRESH_PER_S: Final = 20.0  # background requests a second, at most
DEMAND_S: Final = 60.0  # keep refreshing this long after the last call


@dataclass(slots=True)
class _Cached:
    status: StrategyStatus
    at: float  # monotonic
    pid: int | None  # the process that answered (a restart makes the entry stale)


Fetch = Callable[[str], Awaitable[StrategyStatus]]
Handles = Callable[[], list[WorkerHandle]]


class StatusCache:
    """Cached `/status` answers, refreshed at a bounded rate while somebody looks."""

    def __init__(self, fetch: Fetch, handles: Handles) -> None:
        self._fetch = fetch
        self._handles = handles
        self._cache: dict[str, _Cached] = {}
        self._asked_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def _fresh(self, handle: WorkerHandle, now: float) -> _Cached | None:
        cached = self._cache.get(handle.name)
        if cached is None or cached.pid != handle.pid or now - cached.at > MAX_AGE_S:
            return None
        return cached

    def _known(self, handle: WorkerHandle) -> bool:
        """Heard from the worker's current process (however long ago)."""
        cached = self._cache.get(handle.name)
        return cached is not None and cached.pid == handle.pid

    async def _ask(self, handle: WorkerHandle) -> StrategyStatus:
        status = await self._fetch(handle.name)
        self._cache[handle.name] = _Cached(status, time.monotonic(), handle.pid)
        return status

    async def all(self) -> list[StrategyStatus]:
        """Every strategy's status: cached for running workers, the daemon's record else."""
        now = time.monotonic()
        self._asked_at = now
        handles = self._handles()
        names = {h.name for h in handles}
        for gone in set(self._cache) - names:
            del self._cache[gone]
        unknown = [h for h in handles if h.state is WorkerState.RUNNING and not self._known(h)]
        await asyncio.gather(*(self._ask(h) for h in unknown[:PER_CALL]), return_exceptions=True)
        self._wake()
        found: list[StrategyStatus] = []
        for handle in handles:
            cached = self._cache.get(handle.name)
            if handle.state is WorkerState.RUNNING and cached is not None and self._known(handle):
                found.append(cached.status)
            else:
                found.append(handle.record())
        return found

    def _wake(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._refresh(), name="status-refresh"
            )

    async def _refresh(self) -> None:
        """Ask stale running workers one at a time, at most REFRESH_PER_S, while in demand."""
        while time.monotonic() - self._asked_at < DEMAND_S:
            now = time.monotonic()
            stale = [
                h
                for h in self._handles()
                if h.state is WorkerState.RUNNING and self._fresh(h, now) is None
            ]
            if not stale:
                await asyncio.sleep(1.0)
                continue
            stale.sort(key=lambda h: self._cache[h.name].at if h.name in self._cache else 0.0)
            for handle in stale:
                with contextlib.suppress(Exception):
                    await self._ask(handle)
                await asyncio.sleep(1.0 / REFRESH_PER_S)
                if time.monotonic() - self._asked_at >= DEMAND_S:
                    return

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
