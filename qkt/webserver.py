"""Serve an ASGI app on a socket bound beforehand, so the port is known before serving starts."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn


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
