"""OS plumbing shared by the daemon, the fork server, the worker and the CLI (Linux first).

One copy of each: `prctl` (parent-death signal, child subreaper) through one libc handle,
`/proc/<pid>/stat` reading, reading the one-integer files (pid and port files) the parts leave
for each other, and the handler that also shows warnings on stderr.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from qkt.atomic import read_private

if TYPE_CHECKING:
    import logging  # imported where it is used: the CLI's read-only path does not load it

PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>
PR_SET_CHILD_SUBREAPER: Final = 36


@functools.cache
def libc() -> Any:
    """The C library, loaded once (`ctypes.util.find_library` runs `ldconfig`): the fork server
    loads it before it forks, so its workers share it. Not at import: the CLI reads files
    through this module and has no use for ctypes."""
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _prctl(option: int, value: int) -> bool:
    """`prctl(option, value)`; False off Linux or if the kernel refuses (errno logged)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        if int(libc().prctl(option, value, 0, 0, 0)) == 0:
            return True
    except (OSError, AttributeError):
        return False
    import logging

    logging.getLogger(__name__).warning("prctl(%d) failed: errno %d", option, ctypes.get_errno())
    return False


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants (PR_SET_CHILD_SUBREAPER); Linux only."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(sig: int = signal.SIGTERM, *, parent_pid: int | None = None) -> bool:
    """Have the kernel send `sig` to this process when its parent dies; True if armed.

    The signal fires when the *current* parent exits: with `parent_pid`, it is armed only when
    that is the current parent (a fork server's child, about to be adopted, is not), and if that
    parent died before the call could arm it, `sig` is sent at once (no signal would come).
    """
    if parent_pid is not None and os.getppid() != parent_pid:
        return False
    if not _prctl(PR_SET_PDEATHSIG, int(sig)):
        return False
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
    return True


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of `/proc/<pid>/stat` qkt reads."""

    state: str  # R, S, D, Z (zombie), T, ...
    ppid: int


def proc_stat(pid: int) -> ProcStat | None:
    """`/proc/<pid>/stat` of `pid`, or None if it is gone (the name may hold `)` and spaces)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        return ProcStat(state=fields[0], ppid=int(fields[1]))
    return None


def parent_pid_of(pid: int) -> int | None:
    """The parent pid of `pid`, or None if it is gone."""
    stat = proc_stat(pid)
    return None if stat is None else stat.ppid


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (its parent may reap it late)."""
    stat = proc_stat(pid)
    return stat is not None and stat.state != "Z"


def read_int_file(path: Path) -> int | None:
    """The integer a pid or port file holds, or None if it is missing, unreadable or not one.

    Never through a symlink: another user must not point a port file at their own listener."""
    try:
        return int(read_private(path).decode().strip())
    except (OSError, ValueError):
        return None


def stderr_warnings() -> logging.Handler:
    """A root-logger handler that also shows warnings and errors on stderr (the log file has
    everything): for a process in the foreground of a terminal."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    from qkt.log import LINE_FORMAT, UtcIsoFormatter

    handler.setFormatter(UtcIsoFormatter(LINE_FORMAT))
    return handler


_TCP_LISTEN: Final = "0A"  # the kernel's state code for a listening socket in /proc/net/tcp


def tcp_listener_uid(port: int) -> int | None:
    """The user id owning the TCP socket listening on `port` (any address), read from
    /proc/net/tcp and tcp6; None if none is found or /proc cannot say."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f, None)  # the header
                for line in f:
                    fields = line.split()
                    if len(fields) < 8 or fields[3] != _TCP_LISTEN:
                        continue
                    if int(fields[1].rpartition(":")[2], 16) == port:
                        return int(fields[7])
        except (OSError, ValueError):
            continue
    return None
