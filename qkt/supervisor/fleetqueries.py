"""FleetQueries: what the registry answers about its strategies without changing them.

Handles by name, `GET /list` entries, statuses (through the status cache), the workers' last
figures (heartbeat files first, `/status` for the rest) and log files. Its own module because
the read side is what the control plane calls most and changes for reasons of its own; the
writes (deploy, stop) are `Registry`'s (registry.py), on top of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from qkt.errors import NotFoundError
from qkt.hub import CandleHub
from qkt.notify import Event
from qkt.records import decode, to_json
from qkt.supervisor.daemonconfig import DaemonConfig
from qkt.supervisor.figures import LastFigures, figures_from_beat, figures_of
from qkt.supervisor.fleet import Fleet
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.probe import WorkerProbe
from qkt.supervisor.process import Reaper
from qkt.supervisor.records import (
    DaemonRecord,
    ListEntry,
    RunningStatus,
    StrategyStatus,
)
from qkt.supervisor.spawn import Spawner
from qkt.supervisor.statuses import StatusCache
from qkt.supervisor.warmth import is_stale, warming_text

# `logs/daemon.log` is the daemon's own log: a strategy of that name would write into it.
RESERVED_NAMES: Final = frozenset({"daemon"})
# A worker stores figures in its heartbeat file at once when ready: one running longer without
# any stores none (an older qkt's), and is asked its /status instead.
_FIRST_FIGURES_MS: Final = 10_000


class FleetQueries(Fleet):
    """The registry's queries: its handles, their entries and statuses, and their figures."""

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
