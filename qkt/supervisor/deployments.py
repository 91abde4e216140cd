"""Deployment: what was asked to run under a name, persisted in `deployments.json`."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import orjson

from qkt.atomic import read_json, write_json_atomic
from qkt.errors import InvalidNameError, UserError
from qkt.inputs import parse_balance, parse_bps
from qkt.paths import NAME_PATTERN, check_name
from qkt.worker.spec import source_hash

log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Deployment:
    """One deploy request, validated: enough to start the same worker again after a restart."""

    name: str
    file: str  # absolute path of the .qkt file
    balance: str = "10000"  # money as exact decimal strings
    fee_bps: str = "0"
    slippage_bps: str = "0"
    sim: bool = False
    # The worker port it last had: reused when free, so a strategy keeps its address (and its
    # published port in a container) across restarts of the worker and of the daemon.
    port: int | None = None
    # The exact text the daemon compiled at deploy: every restart (of the worker or of the
    # daemon) runs this, never whatever the file holds by then. None until the deploy reads it.
    source: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if not os.path.isabs(self.file):
            raise UserError(f"the strategy file must be an absolute path, got {self.file!r}")
        parse_balance(self.balance)
        parse_bps(self.fee_bps, "fee_bps")
        parse_bps(self.slippage_bps, "slippage_bps")

    @classmethod
    def create(
        cls,
        file: str,
        name: str | None = None,
        *,
        balance: str = "10000",
        fee_bps: str = "0",
        slippage_bps: str = "0",
        sim: bool = False,
    ) -> Deployment:
        """A deployment of `file` (relative to the daemon's folder) named `name` or its stem."""
        path = Path(resolve_file(file))
        if name is None:
            name = path.stem
            if not NAME_PATTERN.fullmatch(name):
                raise InvalidNameError(
                    f"cannot name a strategy after {path.name!r}: give a name with --as NAME "
                    "(1 to 64 letters, digits, '_' or '-', not starting with '-')"
                )
        return cls(name, str(path), balance, fee_bps, slippage_bps, sim)

    @property
    def source_hash(self) -> str:
        """sha256 (hex) of the deployed source; "" before the deploy has read it."""
        return "" if self.source is None else source_hash(self.source)

    def with_source(self, source: str) -> Deployment:
        """The same deployment, running `source` (read once, at deploy)."""
        return replace(self, source=source)

    def file_changed(self) -> bool:
        """True if the file on disk no longer holds the deployed source (edited or gone)."""
        try:
            with open(self.file, "rb") as file:
                return hashlib.sha256(file.read()).hexdigest() != self.source_hash
        except OSError:
            return True

    def at_port(self, port: int | None) -> Deployment:
        """The same deployment, remembering `port` as its address."""
        return replace(self, port=port)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Deployment:
        """Rebuild one entry; ValueError if it is not one this version wrote."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError(f"not a deployment: {data!r}")
        try:
            return cls(**data)
        except (TypeError, UserError) as error:
            raise ValueError(f"bad deployment {data.get('name')!r}: {error}") from None


def resolve_file(file: str) -> str:
    """`file` as an absolute path: relative to the working folder, `~` and `~user` expanded
    where they name a home folder (`~nobody-here` stays a relative path like any other)."""
    path = Path(file)
    try:
        path = path.expanduser()
    except RuntimeError:
        pass
    return str(path.absolute())


@dataclass(frozen=True, slots=True)
class Saved:
    """What deployments.json holds: what was running, and what the user stopped.

    `stopped` names strategies stopped with `qkt stop`: `--load-dir` does not bring them back at
    the next start (a trader who stopped a losing strategy must not find it trading again after a
    reboot); deploying one again clears it.
    """

    deployments: list[Deployment]
    stopped: frozenset[str] = frozenset()


def save(path: Path, deployments: Iterable[Deployment], stopped: Iterable[str] = ()) -> None:
    """Write the deployments, sorted by name, and the stopped names, atomically."""
    entries = sorted((d.to_json() for d in deployments), key=lambda d: str(d["name"]))
    document = {"version": FORMAT_VERSION, "deployments": entries, "stopped": sorted(stopped)}
    write_json_atomic(path, document, mode=0o600)


def load(path: Path) -> Saved:
    """What was saved at `path`; an unreadable file is logged and counts as empty."""
    try:
        raw = read_json(path)
    except FileNotFoundError:
        return Saved([])
    except (OSError, orjson.JSONDecodeError) as error:
        log.error("ignoring %s: %s", path, error)
        return Saved([])
    items = raw.get("deployments") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        log.error("ignoring %s: no 'deployments' list", path)
        return Saved([])
    found = []
    for item in items:
        try:
            found.append(Deployment.from_json(item))
        except ValueError as error:
            log.error("%s: skipping an entry: %s", path, error)
    stopped = raw.get("stopped", [])
    if not isinstance(stopped, list):
        log.error("%s: ignoring 'stopped': not a list", path)
        stopped = []
    return Saved(
        found, frozenset(n for n in stopped if isinstance(n, str) and NAME_PATTERN.fullmatch(n))
    )
