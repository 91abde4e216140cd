"""Where qkt keeps its state: one folder per daemon (spec.md, "Files")."""

from __future__ import annotations

import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from qkt.errors import InvalidNameError, UserError

ENV_STATE_DIR: Final = "QKT_STATE_DIR"
# Not starting with `-`: a name is also a command-line argument (`qkt stop NAME`).
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")


def check_name(name: str) -> str:
    """Return `name` if it is a valid strategy name, else raise InvalidNameError."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidNameError(
            f"invalid strategy name {name!r}: use 1 to 64 letters, digits, '_' or '-', "
            "not starting with '-'"
        )
    return name


class UntrustedStateDirError(UserError):
    """A state dir someone else could have prepared: not ours, or writable by other users."""

    code = "untrusted_state_dir"


PRIVATE_DIR_MODE: Final = 0o700


def make_private_dir(folder: Path) -> Path:
    """Create `folder` (and missing parents) and make it 0700 if it is ours: logs, journals and
    strategy folders hold balances and positions that no other local user may read."""
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    info = folder.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != PRIVATE_DIR_MODE:
        folder.chmod(PRIVATE_DIR_MODE)
    return folder


def check_trusted_dir(folder: Path) -> None:
    """Refuse a folder that another user owns or that others may write to.

    Such a folder may hold whatever its owner planted: a symlink where a log goes (into a file of
    ours), a `control.port` naming their own listener (to be sent our token).
    """
    info = folder.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise UntrustedStateDirError(f"state dir {folder} is not a folder")
    me = os.geteuid()
    if info.st_uid != me:
        raise UntrustedStateDirError(
            f"state dir {folder} belongs to {_user(info.st_uid)}, not to {_user(me)}: refusing "
            "to use a folder another user could have prepared; use a folder of your own"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UntrustedStateDirError(
            f"state dir {folder} is writable by other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}): refusing to use it; check what is in it, then "
            f"`chmod 700 {folder}`"
        )


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name!r} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def default_state_root() -> Path:
    """`$QKT_STATE_DIR`, else the platform's user state dir (`~/.local/state/qkt` on Linux)."""
    env = os.environ.get(ENV_STATE_DIR)
    if env:
        return Path(env)
    import platformdirs  # only here: with $QKT_STATE_DIR set, a command never loads it

    return Path(platformdirs.user_state_dir("qkt", appauthor=False))


@dataclass(frozen=True, slots=True)
class StateDir:
    """The files of one daemon's state folder; nothing here touches the disk but `ensure`."""

    root: Path

    @classmethod
    def resolve(cls, explicit: str | Path | None = None) -> StateDir:
        """`--state-dir` if given, else `$QKT_STATE_DIR`, else the platform default."""
        root = Path(explicit) if explicit else default_state_root()
        return cls(root.expanduser().absolute())

    def ensure(self) -> StateDir:
        """Create the folder tree 0700 (idempotent) and return self; UntrustedStateDirError if
        the folder is another user's or writable by others (checked before anything is in it)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        check_trusted_dir(self.root)
        for folder in (self.root, self.logs_dir, self.strategies_dir):
            make_private_dir(folder)
        return self

    def check_trusted(self) -> None:
        """UntrustedStateDirError unless the folder is ours and only ours to write (for clients
        about to trust what they read in it, such as the token and port files)."""
        check_trusted_dir(self.root)

    @property
    def control_port(self) -> Path:
        return self.root / "control.port"

    @property
    def control_token(self) -> Path:
        return self.root / "control.token"

    @property
    def daemon_pid(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def daemon_lock(self) -> Path:
        return self.root / "daemon.lock"

    @property
    def deployments(self) -> Path:
        return self.root / "deployments.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def daemon_log(self) -> Path:
        return self.logs_dir / "daemon.log"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{check_name(name)}.log"

    @property
    def strategies_dir(self) -> Path:
        return self.root / "strategies"

    def strategy_dir(self, name: str) -> Path:
        return self.strategies_dir / check_name(name)

    def journal(self, name: str) -> Path:
        return self.strategy_dir(name) / "journal.sqlite"

    @property
    def hub_socket(self) -> Path:
        return self.root / "hub.sock"

    @property
    def hub_snapshot_socket(self) -> Path:
        return self.root / "hub-snapshot.sock"
