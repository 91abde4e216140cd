"""Where qkt keeps its state: one folder per daemon (spec.md, "Files")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import platformdirs

from qkt.errors import InvalidNameError

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


def default_state_root() -> Path:
    """`$QKT_STATE_DIR`, else the platform's user state dir (`~/.local/state/qkt` on Linux)."""
    env = os.environ.get(ENV_STATE_DIR)
    if env:
        return Path(env)
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
        """Create the folder tree (idempotent) and return self."""
        for folder in (self.root, self.logs_dir, self.strategies_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self

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
