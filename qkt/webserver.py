"""Serve an ASGI app on a socket bound beforehand, so the port is known before serving starts.

`serving(app, sock)` (or `start_serving` + `Serving.stop` where the stop has its own place in a
shutdown order) is the one way the daemon and the worker run uvicorn: start on the bound socket,
wait until it serves, and stop it within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
TICK_S: Final = 5.0  # how stale the Date header of an answer may be


def bind_tcp(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind and listen on (host, port); port 0 picks a free one (read it from getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def bind_unix(path: Path) -> socket.socket:
    """Bind and listen on a Unix socket at `path` (0600; a stale socket file is replaced).

    A path longer than the 107 bytes a socket address holds is reached through its folder's
    descriptor (`/proc/self/fd/N/NAME`): the socket is still made at `path`.
    """
    with contextlib.suppress(FileNotFoundError):
        if path.is_socket():
            path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        address = str(path)
        if len(os.fsencode(address)) > 107:
            address = f"/proc/self/fd/{folder}/{path.name}"
        old = os.umask(0o177)  # never a moment at a wider mode than 0600
        try:
            sock.bind(address)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)  # the socket we just made (umask already gave it 0600)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    finally:
        os.close(folder)
    sock.set_inheritable(False)
    return sock


def bound_port(sock: socket.socket) -> int:
    """The port a bound socket listens on."""
    return int(sock.getsockname()[1])


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process.

    The daemon and the worker own SIGTERM/SIGINT (they must stop workers, flush journals, remove
    files in order); uvicorn's own handlers would race with that.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    _wake: asyncio.Event | None = None

    def exit(self) -> None:
        """Ask the server to stop now (not at its next tick)."""
        self.should_exit = True
        if self._wake is not None:
            self._wake.set()

    async def main_loop(self) -> None:
        """uvicorn's loop wakes ten times a second to look at `should_exit`: with 1,000 workers
        that is 10,000 wake-ups a second of an idle box. Here it wakes at once when `exit()` is
        called, and otherwise every TICK_S only to refresh the Date header."""
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # a multiple of 10: uvicorn refreshes the Date
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one server lets its clients hold: connections at once, and how long a connection
    may take to send a request's headers (idle or trickling connections are closed)."""

    max_connections: int = 64
    header_timeout_s: float = 10.0


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, refusing connections beyond `max_connections` at once (they
    are closed at accept: no descriptor held, no request parsed) and closing a connection that
    has not sent a whole request (headers and body) within `header_timeout_s` of connecting or
    of its last answer. Thousands of idle connections used to exhaust the daemon's descriptors;
    an answer that takes long (a deploy waits for its worker) is not cut."""

    # Counted per address family: a flood on the TCP port never locks the owner out of the Unix
    # socket (which other users cannot reach in the 0700 state dir).
    open_by_family: dict[int, int] = {}

    class GuardedProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _family = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            self._family = int(sock.family) if sock is not None else 0
            open_by_family[self._family] = open_by_family.get(self._family, 0) + 1
            if open_by_family[self._family] > limits.max_connections:
                transport.abort()  # the cheapest refusal: no answer, nothing logged
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            waiting = self.cycle is None or self.cycle.response_complete  # for headers, or idle
            if waiting or self.conn.their_state is h11.SEND_BODY:  # or for the rest of a body
                self.transport.abort()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            open_by_family[self._family] -= 1
            super().connection_lost(exc)

    return GuardedProtocol


def make_server(
    app: Any, *, log_level: str = "warning", limits: ConnectionLimits | None = None
) -> QuietServer:
    """A QuietServer for `app`; call `await server.serve(sockets=[sock])`, stop with
    `server.exit()`. With `limits`, connections are capped and timed."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        # What none of our apps uses, left out: each is code every worker would run (and pages
        # it would copy from the fork server) for nothing. No app has startup or shutdown
        # handlers or a websocket route, and nothing stands between a client and 127.0.0.1
        # whose X-Forwarded-For headers could be trusted.
        lifespan="off",
        ws="none",
        proxy_headers=False,
        timeout_graceful_shutdown=2,
        log_config=None,
        http=guarded_protocol(limits) if limits is not None else "auto",
        h11_max_incomplete_event_size=16 * 1024,  # request line and headers, at most
    )
    return QuietServer(config)


class ServeError(RuntimeError):
    """The server stopped, or did not start, before it served."""


class Serving:
    """A server serving on its socket, until `stop()`."""

    def __init__(self, server: QuietServer, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the server to exit and wait for it, at most `timeout_s`; idempotent, logs (does
        not raise) a server that fails or will not stop."""
        self.server.exit()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
        except TimeoutError:
            log.warning("the HTTP server did not stop within %ss", timeout_s)
        except Exception:
            log.exception("the HTTP server failed")


async def start_serving(
    app: Any,
    sock: socket.socket,
    *,
    timeout_s: float = START_TIMEOUT_S,
    more: tuple[socket.socket, ...] = (),
    limits: ConnectionLimits | None = None,
) -> Serving:
    """Serve `app` on the bound `sock` (and the `more` sockets) and return once it serves;
    ServeError if it cannot."""
    server = make_server(app, limits=limits)
    sockets = [sock, *more]
    task = asyncio.get_running_loop().create_task(server.serve(sockets=sockets), name="http")
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if task.done():
            task.result()  # its own failure, if it has one
            raise ServeError("the HTTP server stopped while starting")
        if time.monotonic() > deadline:
            await Serving(server, task).stop()
            raise ServeError(f"the HTTP server did not start within {timeout_s:g} s")
        await asyncio.sleep(0.01)
    return Serving(server, task)


@contextlib.asynccontextmanager
async def serving(
    app: Any, sock: socket.socket, *, stop_timeout_s: float = STOP_TIMEOUT_S
) -> AsyncIterator[Serving]:
    """`start_serving` for the block; stopped (bounded) when it ends."""
    running = await start_serving(app, sock)
    try:
        yield running
    finally:
        await running.stop(stop_timeout_s)
