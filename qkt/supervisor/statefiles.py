"""The daemon's files in its state dir: the lock, daemon.pid, control.token, control.port and
the control plane's Unix socket, control.sock."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
from pathlib import Path
from typing import Final

from qkt.atomic import write_atomic
from qkt.osproc import read_int_file
from qkt.paths import StateDir
from qkt.supervisor.errors import DaemonRunningError

log = logging.getLogger(__name__)

CONTROL_SOCKET: Final = "control.sock"


def control_socket(state: StateDir) -> Path:
    """`<state>/control.sock`: the control plane on a Unix socket (0600 in the 0700 state dir),
    the same HTTP API and bearer token as the TCP port."""
    return state.root / CONTROL_SOCKET


class DaemonFiles:
    """Holds the state dir's exclusive lock for the daemon's life and owns its runtime files.

    `daemon.lock` is held with `flock` and never deleted: unlinking a lock file while another
    process waits on the old inode would let two daemons in. Everything else the daemon made
    for this run (pid, token, port) goes on `release()`.
    """

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self._lock_fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise DaemonRunningError naming the running daemon's pid."""
        self.state.ensure()
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW  # not through a planted link
        fd = os.open(self.state.daemon_lock, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = self.running_pid()
            who = f" (pid {pid})" if pid is not None else ""
            raise DaemonRunningError(
                f"a daemon is already running for {self.state.root}{who}"
            ) from None
        self._lock_fd = fd
        write_atomic(self.state.daemon_pid, f"{os.getpid()}\n", mode=0o600)

    def running_pid(self) -> int | None:
        """The pid in daemon.pid, if the file holds one."""
        return read_int_file(self.state.daemon_pid)

    def make_token(self) -> str:
        """A fresh random bearer token, written to control.token (0600) and returned."""
        token = secrets.token_urlsafe(32)
        write_atomic(self.state.control_token, token + "\n", mode=0o600)
        return token

    def write_port(self, port: int) -> None:
        """Publish the control port (0600, temp + rename): the CLI's way to find us."""
        write_atomic(self.state.control_port, f"{port}\n", mode=0o600)

    def ensure_port(self, port: int) -> None:
        """Write control.port again if someone deleted it (the CLI finds us by it)."""
        if port and not self.state.control_port.exists():
            log.warning("control.port was removed: written again")
            self.write_port(port)

    def remove_port(self) -> None:
        """Stop advertising the control plane (first thing on shutdown, so no CLI waits on us)."""
        for path in (self.state.control_port, control_socket(self.state)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def release(self) -> None:
        """Remove control.port, control.token and daemon.pid, then drop the lock."""
        self.remove_port()
        for path in (self.state.control_token, self.state.daemon_pid):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the fd releases the flock
            self._lock_fd = None
