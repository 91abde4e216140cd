"""Defect 8 (the client side): the CLI checks whom it is about to send the token to.

Before: another local user replaced `control.port` with their own listener and the CLI sent it
the bearer token. Now the CLI refuses a state dir another user could write, and a port that a
process of another user listens on, before it reads or sends the token.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from qkt.paths import StateDir
from tests.hardening.test_state_dir import NOBODY, needs_root
from tests.supervisor.daemons import qkt

END = b"END"


def listen_as_nobody() -> tuple[int, int, int]:
    """A forked child, dropped to user nobody, listening on a loopback port: (its pid, the port,
    a pipe on which it reports what clients sent it, once it is sent END)."""
    port_read, port_write = os.pipe()
    report_read, report_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            server = socket.create_server(("127.0.0.1", 0))
            os.write(port_write, str(server.getsockname()[1]).encode())
            server.settimeout(60)
            received = b""
            while True:
                conn, _ = server.accept()
                data = conn.recv(65536)
                conn.close()
                if data == END:
                    break
                received += data
            os.write(report_write, received)
        finally:
            os._exit(0)
    os.close(port_write)
    os.close(report_write)
    port = int(os.read(port_read, 32))
    os.close(port_read)
    return child, port, report_read


def state_dir(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "s").ensure()


@needs_root
def test_a_port_another_user_listens_on_gets_no_token(tmp_path: Path) -> None:
    state = state_dir(tmp_path)
    state.control_token.write_text("secret-token-of-the-owner\n")
    child, port, report = listen_as_nobody()
    try:
        state.control_port.write_text(f"{port}\n")  # a stale port, taken by someone else
        done = qkt("list", "--state-dir", str(state.root))
    finally:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(END)
        with os.fdopen(report, "rb") as pipe:
            received = pipe.read()
        os.waitpid(child, 0)
    assert done.returncode != 0
    assert done.stderr.startswith("qkt: error: port ")
    assert "not sending it your token" in done.stderr
    assert f"user {NOBODY}" in done.stderr
    assert received == b""  # it was not even spoken to, let alone sent the token


def test_a_state_dir_others_may_write_is_refused_before_the_token_is_read(tmp_path: Path) -> None:
    state = state_dir(tmp_path)
    state.control_token.write_text("secret\n")
    state.control_port.write_text("1\n")
    os.chmod(state.root, 0o777)
    done = qkt("list", "--state-dir", str(state.root))
    assert done.returncode != 0
    assert done.stderr.startswith("qkt: error: state dir ")
    assert "writable by other users" in done.stderr
    assert "secret" not in done.stdout + done.stderr


def test_the_owners_own_state_dir_is_used(tmp_path: Path) -> None:
    state = state_dir(tmp_path)
    done = qkt("list", "--state-dir", str(state.root))
    assert done.returncode != 0
    assert "no daemon running" in done.stderr  # got past the checks, found no port file
