"""A strategy's books after it stops: the record of how it ended, its name's reuse, `qkt rm`.

Three files of the state dir:
- `retired.json`: each strategy stopped with `qkt stop` and not removed, with its final figures
  (`qkt list -a`); deploying the name again takes it off the list.
- `strategies/<name>/deployment.json`: the file and account flags the journal beside it was
  written with. Deploying the name from another file or with other flags while that journal
  exists is refused unless the user says which books to keep (`--resume` continues them,
  `--fresh` archives them): a name alone must never hand one strategy another's trades.
- `archive/<name>-<time>/`: where `--fresh`, `deploy --replace` and `qkt rm` move a name's
  strategy folder (journal) and logs; `qkt rm --purge` deletes them instead.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from qkt.atomic import read_json, write_json_atomic
from qkt.errors import ConflictError
from qkt.paths import StateDir, make_private_dir
from qkt.records import RecordError, decode
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.figures import LastFigures, RetiredStrategy
from qkt.supervisor.records import DeployArgs

log = logging.getLogger(__name__)

RETIRED_FILE: Final = "retired.json"
MARKER_FILE: Final = "deployment.json"
ARCHIVE_DIR: Final = "archive"
_BOOK_FIELDS: Final = ("file", "balance", "fee_bps", "slippage_bps", "sim")


# -- retired strategies ----------------------------------------------------------------------


def load_retired(state: StateDir) -> dict[str, RetiredStrategy]:
    """The strategies stopped and not removed, by name (a damaged file counts as none)."""
    try:
        raw = read_json(state.root / RETIRED_FILE)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.error("cannot read %s (%s): listing no stopped strategies", RETIRED_FILE, error)
        return {}
    found: dict[str, RetiredStrategy] = {}
    for item in raw if isinstance(raw, list) else []:
        try:
            record = decode(RetiredStrategy, item)
        except RecordError as error:
            log.warning("skipped an entry of %s: %s", RETIRED_FILE, error)
            continue
        found[record.name] = record
    return found


def _save_retired(state: StateDir, records: dict[str, RetiredStrategy]) -> None:
    items = [asdict(records[name]) for name in sorted(records)]
    write_json_atomic(state.root / RETIRED_FILE, items, mode=0o600)


def retire(
    state: StateDir,
    deployment: Deployment,
    exit_code: int | None,
    figures: LastFigures | None,
) -> None:
    """Remember that `deployment` was stopped, with its last figures."""
    from qkt.log import iso_utc

    records = load_retired(state)
    d = deployment
    records[d.name] = RetiredStrategy(
        name=d.name,
        file=d.file,
        args=DeployArgs(d.balance, d.fee_bps, d.slippage_bps, d.sim),
        stopped_at=iso_utc(int(time.time() * 1000)),
        exit_code=exit_code,
        figures=figures,
    )
    _save_retired(state, records)


def unretire(state: StateDir, name: str) -> bool:
    """Take `name` off the stopped list (deployed again, or removed); True if it was there."""
    records = load_retired(state)
    if records.pop(name, None) is None:
        return False
    _save_retired(state, records)
    return True


# -- name reuse ------------------------------------------------------------------------------


def remember_books(state: StateDir, deployment: Deployment) -> None:
    """Write which file and account flags the name's journal is being written with."""
    folder = make_private_dir(state.strategy_dir(deployment.name))
    marker = {field: getattr(deployment, field) for field in _BOOK_FIELDS}
    write_json_atomic(folder / MARKER_FILE, marker, mode=0o600)


def _books_of(state: StateDir, name: str) -> dict[str, Any] | None:
    try:
        found = read_json(state.strategy_dir(name) / MARKER_FILE)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def check_reuse(state: StateDir, deployment: Deployment, *, resume: bool, fresh: bool) -> None:
    """Refuse to run `deployment` on books written by another file or other account flags
    unless the user chose (`resume`: carry on with them; `fresh`: archive them, start clean).

    The same file and flags resume, as they always did; a journal with no record of what wrote
    it (from before this check, or from `qkt run`) is resumed too.
    """
    if resume and fresh:
        raise ConflictError("--resume and --fresh contradict each other: choose one")
    name = deployment.name
    if fresh:
        archive_books(state, name)
        return
    if not state.journal(name).exists():
        return
    books = _books_of(state, name)
    if resume or books is None:
        return
    differ = [
        f"{field} {books.get(field)!r} -> {getattr(deployment, field)!r}"
        for field in _BOOK_FIELDS
        if books.get(field) != getattr(deployment, field)
    ]
    if differ:
        raise ConflictError(
            f"{name!r} has books (journal, trades, balance) from another deployment "
            f"({'; '.join(differ)}): add --resume to carry on with them, or --fresh to archive "
            f"them under {state.root / ARCHIVE_DIR} and start clean"
        )


# -- archive ---------------------------------------------------------------------------------


def _logs_of(state: StateDir, name: str) -> list[Path]:
    """The name's log and its rotated copies (`<name>.log`, `<name>.log.1`, ...)."""
    base = state.log_file(name)
    return sorted(p for p in state.logs_dir.glob(f"{base.name}*") if _is_log_of(p.name, base.name))


def _is_log_of(found: str, base: str) -> bool:
    rest = found[len(base) :]
    return rest == "" or (rest.startswith(".") and rest[1:].isdigit())


def archive_books(state: StateDir, name: str, *, purge: bool = False) -> Path | None:
    """Move (or with `purge`, delete) `name`'s strategy folder and logs; the archive folder,
    or None if there was nothing to move or it was deleted."""
    folder = state.strategy_dir(name)
    logs = _logs_of(state, name)
    if not folder.exists() and not logs:
        return None
    if purge:
        shutil.rmtree(folder, ignore_errors=True)
        for path in logs:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = state.root / ARCHIVE_DIR / f"{name}-{stamp}"
    counter = 1
    while target.exists():
        counter += 1
        target = state.root / ARCHIVE_DIR / f"{name}-{stamp}-{counter}"
    make_private_dir(target)
    if folder.exists():
        folder.rename(target / "strategy")
    if logs:
        make_private_dir(target / "logs")
        for path in logs:
            path.rename(target / "logs" / path.name)
    log.info("archived the books of %s in %s", name, target)
    return target
