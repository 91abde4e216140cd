"""Deployment: what was asked to run under a name, persisted in `deployments.json`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import orjson

from qkt.atomic import read_private, write_json_atomic
from qkt.engine import limits_from_flags, parse_leverage
from qkt.errors import InvalidNameError, UserError
from qkt.inputs import parse_balance, parse_bps
from qkt.paths import NAME_PATTERN, check_name
from qkt.records import RecordError, decode
from qkt.worker.record import HaltRecord
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
    # Risk (docs/risk.md): the deploy's limit flags by name ({"max_daily_loss": "250"}, over the
    # daemon's [risk.default]), leverage, margin on/off, and the halt the daemon put on it (an
    # operator's or a daemon-wide limit's), re-applied when its worker starts again.
    # Limits and leverage left out (None) take the daemon's [risk.default] when a worker starts.
    limits: dict[str, str] = field(default_factory=dict)
    leverage: str | None = None
    margin: bool | None = None
    halt: HaltRecord | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if not os.path.isabs(self.file):
            raise UserError(f"the strategy file must be an absolute path, got {self.file!r}")
        parse_balance(self.balance)
        parse_bps(self.fee_bps, "fee_bps")
        parse_bps(self.slippage_bps, "slippage_bps")
        limits_from_flags(self.limits)  # RiskLimitError naming the flag
        if self.leverage is not None:
            parse_leverage(self.leverage)

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
        limits: dict[str, str] | None = None,
        leverage: str | None = None,
        margin: bool | None = None,
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
        return cls(
            name,
            str(path),
            balance,
            fee_bps,
            slippage_bps,
            sim,
            limits=dict(limits or {}),
            leverage=leverage,
            margin=margin,
        )

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

    def halted(self, halt: HaltRecord | None) -> Deployment:
        """The same deployment, halted as `halt` says (None: not halted)."""
        return replace(self, halt=halt)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Deployment:
        """Rebuild one entry; ValueError if it is not one this version wrote."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError(f"not a deployment: {data!r}")
        try:
            halt = data.get("halt")
            if halt is not None:
                data = {**data, "halt": decode(HaltRecord, halt)}
            return cls(**data)
        except (TypeError, UserError, RecordError) as error:
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

    `problem` says what was wrong with a damaged file (None if it was fine or absent): the file
    was kept aside as `deployments.json.corrupt-<time>` and what could be read of it is what this
    holds. `stopped_lost` is True when the stopped list itself could not be read: a daemon should
    then not start `--load-dir` strategies that are not in `deployments` (any may have been
    stopped).
    """

    deployments: list[Deployment]
    stopped: frozenset[str] = frozenset()
    problem: str | None = None
    stopped_lost: bool = False


def save(path: Path, deployments: Iterable[Deployment], stopped: Iterable[str] = ()) -> None:
    """Write the deployments, sorted by name, and the stopped names, atomically."""
    entries = sorted((d.to_json() for d in deployments), key=lambda d: str(d["name"]))
    # `stopped` first: short, and the part a damaged (truncated) file must not lose.
    document = {"version": FORMAT_VERSION, "stopped": sorted(stopped), "deployments": entries}
    write_json_atomic(path, document, mode=0o600)


def load(path: Path) -> Saved:
    """What was saved at `path`. A damaged file is never silently dropped or overwritten: it is
    renamed `<name>.corrupt-<time>`, what can be read of it is written back and returned, and
    `Saved.problem` (also logged) says what happened."""
    try:
        data = read_private(path)
    except FileNotFoundError:
        return Saved([])
    except OSError as error:
        # Unreadable (a symlink, EACCES...): not ours to move, and nothing to recover from.
        problem = f"cannot read {path}: {error.strerror or error}; starting with no deployments"
        log.error("%s", problem)
        return Saved([], problem=problem, stopped_lost=True)
    issues: list[str] = []
    try:
        raw: Any = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raw = _salvage(data.decode("utf-8", errors="replace"))
        issues.append(f"not valid JSON ({error})")
    whole = not issues
    items = raw.get("deployments") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        issues.append("no 'deployments' list")
        items = []
    found = []
    for item in items:
        try:
            found.append(Deployment.from_json(item))
        except ValueError as error:
            issues.append(f"skipped an entry: {error}")
    # A whole file without the key is from before `qkt stop` was remembered: nothing was lost.
    stopped: Any = raw.get("stopped", [] if whole else None) if isinstance(raw, dict) else None
    stopped_lost = not isinstance(stopped, list)
    if stopped_lost:
        issues.append("the list of strategies stopped with `qkt stop` is lost")
        stopped = []
    names = frozenset(n for n in stopped if isinstance(n, str) and NAME_PATTERN.fullmatch(n))
    if not issues:
        return Saved(found, names)
    return _keep_aside(path, Saved(found, names, "; ".join(issues), stopped_lost))


def _salvage(text: str) -> dict[str, Any]:
    """What can be read of a damaged deployments.json: the stopped list if it is whole, and
    every whole deployment object before the damage (a truncated file keeps its start)."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    stopped = re.search(r'"stopped"\s*:\s*', text)
    if stopped is not None:
        with contextlib.suppress(ValueError):
            found["stopped"] = decoder.raw_decode(text, stopped.end())[0]
    listed = re.search(r'"deployments"\s*:\s*\[', text)
    if listed is not None:
        items: list[Any] = []
        position = listed.end()
        while True:
            position = _skip(text, position, " \t\r\n,")
            if not text.startswith("{", position):
                break
            try:
                item, position = decoder.raw_decode(text, position)
            except ValueError:
                break
            items.append(item)
        found["deployments"] = items
    return found


def _skip(text: str, position: int, chars: str) -> int:
    while position < len(text) and text[position] in chars:
        position += 1
    return position


def _keep_aside(path: Path, saved: Saved) -> Saved:
    """Rename the damaged file out of the way, write back what was recovered, and say so."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while aside.exists():
        counter += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    try:
        os.rename(path, aside)
    except OSError as error:
        problem = f"{path.name} is damaged ({saved.problem}) and cannot be kept aside: {error}"
        log.error("%s", problem)
        return replace(saved, problem=problem)
    recovered = ", ".join(d.name for d in saved.deployments) or "none"
    problem = (
        f"{path.name} was damaged ({saved.problem}): kept it as {aside.name}; starting with the "
        f"deployments that could be read ({recovered})"
    )
    log.error("%s", problem)
    try:
        save(path, saved.deployments, saved.stopped)
    except OSError as error:
        log.error("cannot write the recovered %s: %s", path.name, error.strerror or error)
    return replace(saved, problem=problem)
