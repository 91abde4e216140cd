"""Serve an ASGI app on a socket bound beforehand, so the port is known before serving starts.

`serving(app, sock)` (or `start_serving` + `Serving.stop` where the stop has its own place in a
shutdown order) is the one way the daemon and the worker run uvicorn: start on the bound socket,
wait until it serves, and stop it within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Generator
from typing import Any, Final

import uvicorn

log = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0


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


def make_server(app: Any, *, log_level: str = "warning") -> QuietServer:
    """A QuietServer for `app`; call `await server.serve(sockets=[sock])`, stop with
    `server.should_exit = True`."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        log_config=None,
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
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
        except TimeoutError:
            log.warning("the HTTP server did not stop within %ss", timeout_s)
        except Exception:
            log.exception("the HTTP server failed")


async def start_serving(
    app: Any, sock: socket.socket, *, timeout_s: float = START_TIMEOUT_S
) -> Serving:
    """Serve `app` on the bound `sock` and return once it serves; ServeError if it cannot."""
    server = make_server(app)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]), name="http")
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
