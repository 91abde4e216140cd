"""The CLI's light client over a Unix socket: found first, bearer token sent, chunked bodies
read; a socket file with nothing behind it falls back to control.port (here: none)."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from qkt.control.client import SOCKET_NAME, ControlClient, ControlError
from qkt.errors import NoDaemonError
from qkt.paths import StateDir

HEALTH = {
    "status": "ok",
    "version": "0",
    "pid": 1,
    "uptime_ms": 5,
    "strategies": 0,
    "control_port": 0,
    "state_dir": "/x",
    "spawn": "fork",
    "restarts_paused": None,
    "workers_late": 0,
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str | None]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Handler.seen.append((self.path, self.headers.get("Authorization")))
        if self.path == "/health":
            self._json(200, HEALTH)
        elif self.path == "/list":
            self._json(200, [])
        elif self.path.startswith("/logs/chatty"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"one\n", b"two\nthree\n"):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._json(404, {"error": {"code": "not_found", "message": "no such thing"}})

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDir]:
    state = StateDir(tmp_path / "s").ensure()
    state.control_token.write_text("sesame\n")
    server = UnixServer(str(state.root / SOCKET_NAME), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_the_socket_is_used_with_the_token(state: StateDir) -> None:
    Handler.seen.clear()
    client = ControlClient.connect(state)  # no control.port at all: the socket is enough
    assert client.endpoint.unix_path == str(state.root / SOCKET_NAME)
    assert client.health().version == "0" and client.list() == []
    assert ("/list", "Bearer sesame") in Handler.seen
    assert b"".join(client.follow_logs("chatty")) == b"one\ntwo\nthree\n"
    with pytest.raises(ControlError) as error:
        client.status("nope")
    assert error.value.status == 404 and error.value.message == "no such thing"


def test_a_dead_socket_falls_back_to_the_port_file(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s").ensure()
    (state.root / SOCKET_NAME).write_text("")  # a file where a socket was: nothing listens
    with pytest.raises(NoDaemonError, match=r"no daemon running \(no .*control.port\)"):
        ControlClient.connect(state)
