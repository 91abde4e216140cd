"""The worker's lifeline: stop cleanly on SIGTERM/SIGINT, `POST /stop`, or when the parent dies.

Signal handlers only record the request (uvicorn's habit); the runner's loop awaits `wait()` and
does the work in order. A worker under a daemon must not outlive it, so it watches two ways:
Linux's parent-death signal (`PR_SET_PDEATHSIG`, immediate, but tied to the thread that forked
it) and a watchdog that polls `spec.parent_pid` (the daemon may not be the direct parent: a fork
server forks workers and the daemon adopts them as a subreaper). The same timer beats the
worker's heartbeat (`qkt.worker.heartbeat`): one wake-up every 2 s does both, so 1,000 idle
workers cost the box 500 cheap wake-ups a second, not a poll of `/proc` each half second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

import psutil

from qkt.worker.beatfigures import HeartbeatFigures
from qkt.worker.heartbeat import BEAT_INTERVAL_S, HeartbeatWriter

log = logging.getLogger(__name__)

WATCH_INTERVAL_S: Final = BEAT_INTERVAL_S
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


class StopReason(Enum):
    """Why a worker stops."""

    SIGNAL = "signal"
    REQUEST = "request"  # POST /stop
    PARENT_DIED = "parent_died"


@dataclass(frozen=True, slots=True)
class StopRequest:
    """A stop asked for: why, and whether to close every position first."""

    reason: StopReason
    flatten: bool = False
    detail: str = ""


class Lifeline:
    """Collects stop requests (signals, HTTP, a dead parent) into one the runner awaits."""

    def __init__(
        self,
        parent_pid: int | None = None,
        interval_s: float = WATCH_INTERVAL_S,
        heartbeat: HeartbeatWriter | None = None,
    ) -> None:
        self._parent_pid = parent_pid
        self._interval_s = interval_s
        self._heartbeat = heartbeat
        self._trades: Callable[[], int | None] = lambda: None
        self._halts: Callable[[], int] = lambda: 0
        self._figures: HeartbeatFigures | None = None
        self._event = asyncio.Event()
        self._request: StopRequest | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._signals: list[int] = []

    @property
    def request(self) -> StopRequest | None:
        """The first stop asked for, if any."""
        return self._request

    def request_stop(self, reason: StopReason, *, flatten: bool = False, detail: str = "") -> None:
        """Ask for a stop; the first request wins (a later SIGTERM cannot undo a flatten)."""
        if self._request is None:
            self._request = StopRequest(reason, flatten, detail)
            self._event.set()

    async def wait(self) -> StopRequest:
        """Until a stop is asked for."""
        await self._event.wait()
        assert self._request is not None
        return self._request

    def report(
        self,
        trades: Callable[[], int | None],
        halts: Callable[[], int],
        figures: HeartbeatFigures | None = None,
    ) -> None:
        """What each heartbeat says: the trade count (the daemon's `qkt list` shows it), how
        many times the halt changed (the daemon reads the worker's halt when that moves) and,
        when `figures` has new ones to store, the strategy's figures (`beatfigures`)."""
        self._trades, self._halts, self._figures = trades, halts, figures

    def beat(self) -> None:
        """One heartbeat now (the runner beats at once when it is ready, then the timer)."""
        if self._heartbeat is not None:
            self._heartbeat.beat(self._trades(), self._halts())
            if self._figures is not None:
                self._figures.store(self._heartbeat)

    def install(self) -> None:
        """Take over SIGTERM/SIGINT in the running loop and start watching the parent."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
            self._signals.append(sig)
        if self._parent_pid is not None or self._heartbeat is not None:
            self._watchdog = loop.create_task(self._watch(self._parent_pid), name="lifeline")

    def _on_signal(self, sig: int) -> None:
        self.request_stop(StopReason.SIGNAL, detail=signal.Signals(sig).name)

    async def _watch(self, pid: int | None) -> None:
        parent: psutil.Process | None = None
        if pid is not None:
            try:
                parent = psutil.Process(pid)
            except psutil.Error:
                self.request_stop(StopReason.PARENT_DIED, detail=f"parent pid {pid} is gone")
                return
        while self._request is None:
            # Our parent is the daemon once adopted: one getppid() says it lives; /proc only
            # while the fork server's middle process is still our parent.
            if parent is not None and os.getppid() != pid and not _alive(parent):
                self.request_stop(StopReason.PARENT_DIED, detail=f"parent pid {pid} died")
                return
            try:
                self.beat()
            except Exception:  # a beat that fails must not stop the worker: it shows as late
                log.exception("heartbeat failed")
            await asyncio.sleep(self._interval_s)

    async def aclose(self) -> None:
        """Give the signals back and stop the watchdog."""
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._heartbeat is not None:
            self._heartbeat.close()


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie; `is_running` also notices a reused pid (create time)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
