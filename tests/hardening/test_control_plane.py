"""Issue 11 #2 and #12: nobody without the token can take the control plane down, and the owner
can always reach it (the Unix socket, a control.port written again)."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from qkt.supervisor.statefiles import control_socket
from tests.helpers import wait_until
from tests.supervisor.daemons import RunningDaemon, running_daemon

CONFIG = """\
[daemon]
control_connections = 8
control_header_timeout_s = 1.0
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("control")
    config = root / "qkt.toml"
    config.write_text(CONFIG)
    with running_daemon(root / "s", "--config", str(config)) as running:
        yield running


def tcp(daemon: RunningDaemon) -> socket.socket:
    port = int(daemon.state.control_port.read_text())
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def unix(daemon: RunningDaemon) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(control_socket(daemon.state)))
    return sock


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send `request` and read the answer until the server closes or the head and body came."""
    with sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if length and len(body) >= length[0]:
                break
        return answer


def request(method: str, path: str, token: str | None = None, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: qkt"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_the_token_is_checked_before_a_body_is_read_or_parsed(daemon: RunningDaemon) -> None:
    # Malformed JSON without the token: 401, not the 422 a parser would give.
    malformed = request("POST", "/deploy", "wrong", Content_Length="9") + b"{not json"
    answer = exchange(tcp(daemon), malformed)
    assert answer.startswith(b"HTTP/1.1 401 ") and b'"unauthorized"' in answer
    # A 300 MB body announced, none of it sent: answered at once, nothing read.
    big = request("POST", "/deploy", None, Content_Length=str(300 * 2**20))
    assert exchange(tcp(daemon), big).startswith(b"HTTP/1.1 401 ")
    # With the token, the size alone refuses it.
    answer_bytes = exchange(
        tcp(daemon),
        request("POST", "/deploy", daemon.token(), **{"Content-Length": str(300 * 2**20)}),
    )
    assert answer_bytes.startswith(b"HTTP/1.1 413 ") and b"body_too_large" in answer_bytes
    chunked = request("POST", "/deploy", daemon.token(), Transfer_Encoding="chunked")
    assert exchange(tcp(daemon), chunked).startswith(b"HTTP/1.1 411 ")


def test_idle_connections_are_capped_and_cut_and_the_unix_socket_stays_open(
    daemon: RunningDaemon,
) -> None:
    idle = [tcp(daemon) for _ in range(30)]  # never send a byte
    try:
        # The owner still gets in through the Unix socket, at once.
        answer = exchange(unix(daemon), request("GET", "/list", daemon.token()))
        assert answer.startswith(b"HTTP/1.1 200 ")
        fds = len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))
        assert fds < 120, f"the daemon holds {fds} descriptors"

        def all_cut() -> bool:
            for sock in idle:
                sock.settimeout(5)
                try:
                    if sock.recv(1) != b"":
                        return False
                except ConnectionResetError:
                    pass
            return True

        wait_until(all_cut, timeout=15, what="the idle connections to be closed")
    finally:
        for sock in idle:
            sock.close()
    assert daemon.get("/health").status_code == 200


def test_the_unix_socket_is_private_and_wants_the_token(daemon: RunningDaemon) -> None:
    path = control_socket(daemon.state)
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.state.root).st_mode) == 0o700
    assert exchange(unix(daemon), request("GET", "/list")).startswith(b"HTTP/1.1 401 ")
    assert exchange(unix(daemon), request("GET", "/health")).startswith(b"HTTP/1.1 200 ")


def test_a_deleted_control_port_file_is_written_again(daemon: RunningDaemon) -> None:
    port = daemon.state.control_port.read_text()
    daemon.state.control_port.unlink()
    assert wait_until(daemon.state.control_port.exists, timeout=10, what="control.port again")
    assert daemon.state.control_port.read_text() == port


def test_a_path_outside_the_routes_gets_the_envelope_not_a_redirect(
    daemon: RunningDaemon,
) -> None:
    """Issue 11 minor: `/status/..%2f` answered a 307 redirect."""
    answer = exchange(tcp(daemon), request("GET", "/status/..%2f", daemon.token()))
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b'"invalid_name"' in answer


def test_the_socket_is_gone_after_the_daemon_stops(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "s") as running:
        assert control_socket(running.state).exists()
        assert running.stop() == 0
    assert not control_socket(running.state).exists()
