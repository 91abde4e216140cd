"""Process plumbing for the daemon: reaping children, signalling groups, describing exits."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Final

# prctl lives in qkt.osproc; the daemon's modules (and the fork server) import it from here.
from qkt.osproc import become_subreaper as become_subreaper
from qkt.osproc import set_parent_death_signal as set_parent_death_signal
from qkt.worker.exitcodes import MEANING

log = logging.getLogger(__name__)

_UNCLAIMED_TTL_S: Final = 300.0  # how long an exit nobody has asked about is remembered


def exit_code(status: int) -> int:
    """A waitpid status as an exit code; minus the signal number if a signal killed it."""
    return os.waitstatus_to_exitcode(status)


def describe_exit(code: int) -> str:
    """`exited with code 3` or `killed by SIGKILL`."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    meaning = MEANING.get(code)
    if meaning is not None:
        return f"stopped: {meaning} (exit code {code})"
    return f"exited with code {code}"


class Reaper:
    """Collects the exit status of every child of this process, so none stays a zombie.

    The daemon is a subreaper, so besides its own children it adopts its workers and anything
    they leave behind. `reap()` waits for all of them without blocking; whoever owns a pid asks
    `claim(pid)` for its exit code. Exits nobody claims are forgotten after a while.
    """

    def __init__(self) -> None:
        self._exits: dict[int, tuple[int, float]] = {}

    def reap(self) -> None:
        """Collect every child that has exited (non-blocking)."""
        now = time.monotonic()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            self._exits[pid] = (exit_code(status), now)
        for pid in [p for p, (_, t) in self._exits.items() if now - t > _UNCLAIMED_TTL_S]:
            del self._exits[pid]

    def claim(self, pid: int, *, reap: bool = True) -> int | None:
        """The exit code of `pid` if it has exited (reaping first, unless the caller just did:
        the tick reaps once for all its workers), else None."""
        if reap:
            self.reap()
        found = self._exits.pop(pid, None)
        return None if found is None else found[0]


def signal_process(pid: int, sig: int, *, group: bool = False) -> bool:
    """Send `sig` to `pid`, or to the process group it leads; False if nothing was there.

    Callers signal only pids they have not reaped yet (so the pid cannot have been reused), or,
    with `group`, the group of a worker that led its own session (and whatever it left in it).
    """
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        log.warning("not allowed to signal pid %d", pid)
        return False
