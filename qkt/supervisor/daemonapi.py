"""DaemonApi: a daemon's parts, and what its control plane, alert channels and chat commands
ask of it: health, hub keys, alert channels and their test, the market check, a shutdown request.

Its own module because these answers change with what the routes need, not with how the daemon
runs; `Daemon` (daemon.py) builds on it with the running: start, tick loop, staged shutdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client.registry import Collector
from starlette.types import ASGIApp

from qkt import __version__
from qkt.errors import ConflictError, NotFoundError
from qkt.hub import CandleHub
from qkt.notify import Event, NotifyConfigError, send_test
from qkt.paths import StateDir
from qkt.records import decode
from qkt.supervisor.alerts import Alerts, Collectors
from qkt.supervisor.daemonconfig import DaemonConfig
from qkt.supervisor.halts import Halts
from qkt.supervisor.records import DaemonHealth, HubKey, NotifyChannel, NotifyTestResult
from qkt.supervisor.registry import Registry
from qkt.supervisor.spawn import Spawner
from qkt.supervisor.statefiles import DaemonFiles
from qkt.supervisor.warmth import FeedCollector

if TYPE_CHECKING:
    from qkt.supervisor.daemon import Daemon

AppFactory = Callable[["Daemon"], ASGIApp]
Announce = Callable[[str], None]


class DaemonApi:
    """A daemon's parts and its answers to the control plane; `Daemon` runs them."""

    def __init__(
        self, config: DaemonConfig, app_factory: AppFactory, announce: Announce | None = None
    ) -> None:
        self.config = config
        self.version = __version__
        self.pid = os.getpid()
        self.token = ""
        self.control_port = 0
        self._app_factory = app_factory
        self._foreground = announce is not None
        self._announce = announce or (lambda line: None)
        self._files = DaemonFiles(config.state)
        self._started = time.monotonic()
        self._signals: list[int] = []
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._registry: Registry | None = None
        self._hub: CandleHub | None = None
        self._spawner: Spawner | None = None
        self.alerts = Alerts(config.notify)  # `[notify.*]` channels; none configured: silent
        # Halt, resume, kill (docs/risk.md): `daemon.halts.halt(name, reason, by)`, ...; their
        # events (halt, resume, kill, risk breach) go to the alert channels.
        self.halts = Halts(emit=self.alerts.emit)
        self._alerts_started = False

    @property
    def state(self) -> StateDir:
        return self.config.state

    @property
    def registry(self) -> Registry:
        assert self._registry is not None, "the daemon is not running"
        return self._registry

    @property
    def stopping(self) -> bool:
        """True once shutdown has been asked for (follow streams end then)."""
        return self._stop.is_set()

    @property
    def spawn_method(self) -> str:
        return self._spawner.method if self._spawner is not None else "none"

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def hub_keys(self) -> list[HubKey]:
        """`GET /hub`: one record per key the hub holds."""
        stats = self._hub.stats() if self._hub is not None else []
        return [HubKey(**dataclasses.asdict(line)) for line in stats]

    def emit(self, event: Event) -> None:
        """Tell the alert channels subscribed to `event`'s kind; never blocks, never raises."""
        self.alerts.emit(event)

    def notify_channels(self) -> list[NotifyChannel]:
        """`GET /notify`: each alert channel's health (`qkt daemon status`)."""
        return [decode(NotifyChannel, health.to_json()) for health in self.alerts.health()]

    async def notify_test(self, channel: str | None) -> list[NotifyTestResult]:
        """`POST /notify/test`: one test message through `channel` (every one if None);
        NotFoundError for a channel this daemon does not have."""
        try:
            results = await send_test(self.config.notify, channel)
        except NotifyConfigError as error:
            raise NotFoundError(error.message) from None
        return [NotifyTestResult(r.channel, r.kind, r.ok, r.answer) for r in results]

    def collector(self) -> Collector:
        """What `/metrics` adds to the daemon's own families: alert channels, per-key feeds."""
        return Collectors([self.alerts.collector(), FeedCollector(self.hub_keys)])

    def health(self) -> DaemonHealth:
        """`GET /health`."""
        return DaemonHealth(
            status="ok",
            version=self.version,
            pid=self.pid,
            uptime_ms=self.uptime_ms(),
            strategies=len(self.registry.handles()),
            control_port=self.control_port,
            state_dir=str(self.state.root),
            spawn=self.spawn_method,
            restarts_paused=self.registry.restarts_paused,
            workers_late=self.registry.workers_late,
        )

    def request_shutdown(self, reason: str) -> None:
        """Ask the tick loop to shut down (from a control request)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    def check_market(self, speed: float | None, seed: int | None) -> None:
        """Refuse `deploy --speed/--seed` that differ from the daemon's shared simulated market:
        a conflict with the daemon's state (409), not a malformed request."""
        feed = self.config.feed
        if speed is not None and speed != feed.speed:
            raise ConflictError(
                f"this daemon's simulated market runs at --speed {feed.speed:g}, not {speed:g}: "
                "every strategy shares it; restart the daemon with --speed to change it"
            )
        if seed is not None and seed != feed.seed:
            raise ConflictError(
                f"this daemon's simulated market uses --seed {feed.seed}, not {seed}: every "
                "strategy shares it; restart the daemon with --seed to change it"
            )
