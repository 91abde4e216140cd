"""Daemon: one asyncio process that owns the hub, the registry and the control plane.

Signal handlers only record the signal; a tick loop drains them, reaps children, pings workers
and applies the restart policy (uvicorn's supervisor loop). Shutdown runs in a fixed order, each
step bounded and logged once: stop accepting control requests, stop the workers (staged), stop
the fork server, close the hub, remove control.port / control.token / daemon.pid.

What the control plane asks of it (health, hub keys, alert channels, ...) and the parts it owns
are `DaemonApi`'s (daemonapi.py), which Daemon builds on.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from collections.abc import Awaitable
from typing import Any, Final

from qkt import log as qkt_log
from qkt import proctitle
from qkt.errors import QktError
from qkt.hub import CandleHub, HubConfig
from qkt.market.registry import open_feed
from qkt.notify import Event
from qkt.osproc import stderr_warnings
from qkt.supervisor import deployments
from qkt.supervisor.daemonapi import DaemonApi
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.errors import ConfigError
from qkt.supervisor.probe import WorkerProbe
from qkt.supervisor.process import Reaper, become_subreaper
from qkt.supervisor.registry import Registry
from qkt.supervisor.spawn import ExecSpawner, ForkServer, Spawner
from qkt.supervisor.statefiles import control_socket
from qkt.webserver import (
    ConnectionLimits,
    Serving,
    bind_tcp,
    bind_unix,
    bound_port,
    start_serving,
)

log = logging.getLogger(__name__)
_SERVER_STOP_S: Final = 5.0
_STEP_S: Final = 10.0


class Daemon(DaemonApi):
    """`qkt daemon`: run until SIGINT/SIGTERM or `POST /shutdown`, then stop everything."""

    # -- running -----------------------------------------------------------------------------

    def run(self) -> int:
        """Take the state dir, serve until told to stop, clean up; the exit status (0)."""
        proctitle.set_title(proctitle.daemon(self.state.root))
        load_dir = self.config.load_dir
        if load_dir is not None and not load_dir.is_dir():
            raise ConfigError(f"--load-dir {load_dir}: no such folder")
        self._files.acquire()
        _raise_open_files_limit()
        try:
            qkt_log.configure(file=self.state.daemon_log)
            # One line per health ping would bury everything else in daemon.log.
            for noisy in ("httpx", "httpcore"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            if self._foreground:
                # Crashes, restarts and give-ups also show in the terminal, not only in the file.
                console = stderr_warnings()
                console.addFilter(qkt_log.RepeatFilter())  # a flood shows a few times, counted
                logging.getLogger().addHandler(console)
            return asyncio.run(self._main())
        finally:
            self._files.release()
            logging.getLogger().handlers.clear()

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signals.append, sig)
        self._stop = asyncio.Event()
        control: Serving | None = None
        boot: asyncio.Task[None] | None = None
        probe: WorkerProbe | None = None
        reaper = Reaper()
        try:
            self.token = self._files.make_token()
            self._spawner = await self._start_spawner(reaper)
            feed = self.config.feed
            self._hub = CandleHub(lambda broker: open_feed(broker, feed), self.state, HubConfig())
            await self._hub.start()
            self._hub.add_listener(self.alerts.on_feed)
            probe = WorkerProbe(self.config.workers.bind, self.token)
            saved = deployments.load(self.state.deployments)
            self._registry = Registry(
                self.config,
                self._hub,
                self._spawner,
                reaper,
                probe,
                stopped=saved.stopped,
                emit=self.alerts.emit,
            )
            self.halts.start(self._registry, probe, self.config.risk)
            control = await self._serve_control()
            self._say_hello()
            await self.alerts.start(self)
            self._alerts_started = True
            self.emit(Event.daemon("start", detail=f"pid {self.pid}, qkt {self.version}"))
            boot = loop.create_task(
                self._deploy_at_start(saved.deployments), name="deploy-at-start"
            )
            await self._tick_loop(reaper)
        finally:
            await self._shutdown(control, boot, probe)
        return 0

    async def _start_spawner(self, reaper: Reaper) -> Spawner:
        workers = self.config.workers
        if workers.spawn == "fork":
            if become_subreaper():
                server = ForkServer(workers.module, reaper, str(self.state.daemon_log))
                try:
                    await server.start()
                    return server
                except QktError as error:
                    log.error("%s; spawning each worker as a new interpreter instead", error)
            else:
                log.warning("no PR_SET_CHILD_SUBREAPER here: each worker is a new interpreter")
        return ExecSpawner(workers.module)

    async def _serve_control(self) -> Serving:
        """Bind first, then serve: the port is known (and published) before anyone can race.
        The same app answers on TCP and on `<state>/control.sock`, connections capped."""
        try:
            sock = bind_tcp("127.0.0.1", self.config.control_port)
        except OSError as error:
            raise ConfigError(
                f"cannot listen on 127.0.0.1:{self.config.control_port}: {error.strerror}"
            ) from None
        try:
            unix = bind_unix(control_socket(self.state))
        except OSError as error:
            sock.close()
            raise ConfigError(
                f"cannot listen on {control_socket(self.state)}: {error.strerror}"
            ) from None
        self.control_port = bound_port(sock)
        limits = ConnectionLimits(
            self.config.control_connections, self.config.control_header_timeout_s
        )
        try:
            control = await start_serving(
                self._app_factory(self), sock, more=(unix,), limits=limits
            )
        except Exception as error:
            sock.close()
            unix.close()
            raise ConfigError(
                f"the control plane did not start ({error}; see logs/daemon.log)"
            ) from None
        self._files.write_port(self.control_port)
        return control

    def _say(self, line: str) -> None:
        log.info("%s", line)
        self._announce(line)

    def _say_hello(self) -> None:
        self._say(f"qkt {self.version} daemon, pid {self.pid}")
        self._say(f"state dir {self.state.root}")
        self._say(f"control plane on http://127.0.0.1:{self.control_port}")
        feed = self.config.feed
        self._say(
            f"workers: {self.spawn_method} spawn; simulated market speed {feed.speed:g}, "
            f"seed {feed.seed}"
        )
        channels = self.config.notify.channels
        if channels:
            named = ", ".join(f"{c.name} ({c.kind})" for c in channels)
            self._say(f"alerts to {named}")

    async def _tick_loop(self, reaper: Reaper) -> None:
        next_files = 0.0
        while not self._stop.is_set():
            self._drain_signals()
            reaper.reap()
            now = time.monotonic()
            self.registry.tick(now)
            if now >= next_files:
                next_files = now + 1.0
                self._files.ensure_port(self.control_port)
            try:
                await asyncio.wait_for(self._stop.wait(), self.config.tick_s)
            except TimeoutError:
                pass

    def _drain_signals(self) -> None:
        while self._signals:
            name = signal.Signals(self._signals.pop(0)).name
            self.request_shutdown(name)

    async def _deploy_at_start(self, planned: list[Deployment]) -> None:
        """Redeploy what deployments.json lists, then every *.qkt of --load-dir (sorted) but
        those the user stopped."""
        names = {d.name: d for d in planned}
        if self.config.load_dir is not None:
            for path in sorted(self.config.load_dir.glob("*.qkt")):
                try:
                    wanted = Deployment.create(str(path))
                except QktError as error:
                    self._say(f"skipped {path.name}: {error.message}")
                    continue
                known = names.get(wanted.name)
                if known is None and self.registry.stopped_by_user(wanted.name):
                    self._say(
                        f"skipped {path.name}: {wanted.name} was stopped with `qkt stop`; "
                        f"`qkt deploy {path}` runs it again"
                    )
                elif known is None:
                    planned.append(wanted)
                    names[wanted.name] = wanted
                elif known.file != wanted.file:
                    self._say(
                        f"skipped {path.name}: {wanted.name!r} is already deployed "
                        f"from {known.file}"
                    )
        gate = asyncio.Semaphore(self.config.deploy_concurrency)

        async def one(deployment: Deployment) -> None:
            async with gate:
                try:
                    handle = await self.registry.deploy(deployment, keep_on_failure=True)
                except QktError as error:
                    self._say(f"skipped {deployment.name}: {error.message}")
                    return
                if handle.pid is None:  # kept, to be retried (a late mount, a slow start)
                    self._say(f"{handle.name} did not start ({handle.error}): {handle.state.value}")
                else:
                    self._say(f"deployed {handle.name} (pid {handle.pid}, port {handle.port})")

        await asyncio.gather(*(one(d) for d in planned))
        self.registry.save()

    async def _shutdown(
        self,
        control: Serving | None,
        boot: asyncio.Task[None] | None,
        probe: WorkerProbe | None,
    ) -> None:
        self._stop.set()
        reason = self._stop_reason or "an error"
        self._say(f"shutting down ({reason})")
        if self._alerts_started:
            self.emit(Event.daemon("stop", detail=reason))
        # 1. No new control requests: the CLI stops finding us, the server stops accepting.
        self._files.remove_port()
        if control is not None:
            await _step("stop the control plane", control.stop(_SERVER_STOP_S))
        if boot is not None:
            boot.cancel()
            await _step("cancel deploys at start", asyncio.wait_for(boot, _STEP_S))
        await _step("stop the risk watch", asyncio.wait_for(self.halts.aclose(), _STEP_S))
        # 2. Workers: staged stop, all at once.
        if self._registry is not None:
            count = len(self._registry.handles())
            grace_ms = self.config.workers.stop_timeout_ms
            await _step(
                "stop the workers",
                asyncio.wait_for(self._registry.stop_all(grace_ms), grace_ms / 1000 + _STEP_S),
            )
            self._say(f"stopped {count} strateg{'y' if count == 1 else 'ies'}")
        # 3. The fork server, then the hub (feeds, then sockets with linger=0).
        if self._spawner is not None:
            await _step("stop the fork server", asyncio.wait_for(self._spawner.aclose(), _STEP_S))
        if self._hub is not None:
            await _step("close the hub", asyncio.wait_for(self._hub.aclose(), _STEP_S))
        if probe is not None:
            await _step("close the worker client", probe.aclose())
        # Last: the stop message (and what the workers' stop said) gets its few seconds.
        await _step("close the alert channels", self.alerts.aclose())
        self._say("daemon stopped")


def _raise_open_files_limit() -> None:
    """Take the hard limit of open files as our soft one: the control plane, the hub's sockets
    and the workers' connections need about three descriptors per strategy, more than the
    usual soft 1024 allows for a few hundred (docs/performance.md, Scale)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as error:
            log.warning("could not raise the open files limit from %d: %s", soft, error)


async def _step(what: str, awaitable: Awaitable[Any]) -> None:
    """Run one shutdown step; a failure or timeout is logged once and the next step runs."""
    try:
        await awaitable
    except asyncio.CancelledError:
        pass
    except TimeoutError:
        log.error("shutdown: %s timed out", what)
    except Exception:
        log.exception("shutdown: %s failed", what)
