"""The journal's file on disk: created and kept 0600, checked for damage, and a damaged one set
aside (with its WAL) rather than replaced by a fresh account; `JournalError` for a journal that
cannot be used.

Its own module because none of it is about the journal's contents: these are the file-system
rules `SqliteJournal` (`qkt.worker.journal`) applies before and while it opens the database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Final

from qkt.errors import UserError

JOURNAL_MODE: Final = 0o600
CORRUPT_SUFFIX: Final = ".corrupt-"
_SIDE_FILES: Final = ("-wal", "-shm")
_SQLITE_CORRUPT: Final = 11
_SQLITE_NOTADB: Final = 26


class JournalError(UserError):
    """A journal that cannot be used: newer schema, not a database, unreadable state."""

    code = "journal_error"


def _create_private(path: Path) -> None:
    """Create the journal file 0600 before SQLite does (it would use 0644), or make an existing
    one 0600; a symlink at the path is refused rather than followed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, JOURNAL_MODE)
    except OSError as error:
        raise JournalError(f"cannot open journal {path}: {error.strerror or error}") from None
    try:
        os.fchmod(fd, JOURNAL_MODE)
    finally:
        os.close(fd)


def _tighten(path: str) -> None:
    """Make an existing file 0600 (not through a symlink); nothing if it is not there."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, JOURNAL_MODE)
        finally:
            os.close(fd)


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    """A damaged file (not a locked one, a full disk...)."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(error)
    return "malformed" in text or "not a database" in text


def _move_aside(path: Path) -> Path:
    """Rename the journal (and its WAL/SHM, keeping their pairing) to `...corrupt-<time>`."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{stamp}")
    counter = 1
    while aside.exists():
        counter += 1
        aside = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{stamp}-{counter}")
    os.rename(path, aside)
    for suffix in _SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{path}{suffix}", f"{aside}{suffix}")
    return aside


def _refuse_after_corruption(path: Path) -> None:
    """No journal but a damaged one set aside: refuse, rather than start a new account."""
    if path.exists():
        return
    aside = sorted(path.parent.glob(f"{path.name}{CORRUPT_SUFFIX}*"))
    damaged = [p for p in aside if not p.name.endswith(_SIDE_FILES)]
    if damaged:
        raise JournalError(
            f"journal {path} was found damaged and set aside as {damaged[-1].name}: not starting "
            f"a new account in its place. To start this strategy afresh, remove "
            f"{', '.join(p.name for p in damaged)} from {path.parent}"
        )
