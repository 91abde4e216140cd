"""One worker per strategy name: an exclusive `flock` in `<state>/strategies/<name>/`.

Two workers writing one journal would interleave two engines' books. The lock is the kernel's:
it goes away with the process however it ends (kill -9 included), so there is nothing stale to
clean up. The file holds the owner's pid, for the message the second one prints.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from qkt.errors import ConflictError
from qkt.paths import make_private_dir


class AlreadyRunningError(ConflictError):
    """Another process holds the strategy's lock."""

    code = "already_running"


class InstanceLock:
    """An exclusive, non-blocking lock on `path`, held until `release()` or process exit."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise AlreadyRunningError naming the holder's pid."""
        make_private_dir(self.path.parent)
        # 0600, and never through a symlink planted at the path.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        file = open(fd, "a+", encoding="ascii")  # held open while locked
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise AlreadyRunningError(
                f"strategy {self.name!r} is already running (pid {holder}); stop it first"
            ) from None
        except BaseException:
            file.close()
            raise
        os.set_inheritable(file.fileno(), False)
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Drop the lock (idempotent); the file stays, empty of meaning."""
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
