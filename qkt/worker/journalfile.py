"""The journal's file on disk: created and kept 0600, checked for damage, and a damaged one set
aside (with its WAL) rather than replaced by a fresh account; `JournalError` for a journal that
cannot be used; the WAL's room reserved and its checkpoints spread (`reserve_wal`,
`checkpoint_pages`).

Its own module because none of it is about the journal's contents: these are the file-system
rules `SqliteJournal` (`qkt.worker.journal`) applies before and while it opens the database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Final

from qkt.errors import UserError

JOURNAL_MODE: Final = 0o600
CORRUPT_SUFFIX: Final = ".corrupt-"
SIDE_FILES: Final = ("-wal", "-shm")
_SQLITE_CORRUPT: Final = 11
_SQLITE_NOTADB: Final = 26

# SQLite copies a WAL into its database (a checkpoint) once the WAL holds this many pages (its
# default: 1,000), then writes the WAL again from its start. A checkpoint writes the pages of
# many candles and flushes both files; strategies deployed together commit in step, so with one
# threshold for all they would all checkpoint in the same candle's burst (on 1m candles, every
# 2-3 hours). Each journal takes its own, from its path: a handful of them in any one minute.
CHECKPOINT_MIN_PAGES: Final = 500
CHECKPOINT_MAX_PAGES: Final = 1000
_WAL_HEADER: Final = 32  # bytes, and each frame's header before its page (sqlite.org/walformat)
_FRAME_HEADER: Final = 24
_SLACK_FRAMES: Final = 64  # the commit that crosses the threshold, and then some


class JournalError(UserError):
    """A journal that cannot be used: newer schema, not a database, unreadable state."""

    code = "journal_error"


def create_private(path: Path) -> None:
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


def tighten(path: str) -> None:
    """Make an existing file 0600 (not through a symlink); nothing if it is not there."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, JOURNAL_MODE)
        finally:
            os.close(fd)


def is_corruption(error: sqlite3.DatabaseError) -> bool:
    """A damaged file (not a locked one, a full disk...)."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(error)
    return "malformed" in text or "not a database" in text


def move_aside(path: Path) -> Path:
    """Rename the journal (and its WAL/SHM, keeping their pairing) to `...corrupt-<time>`."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{stamp}")
    counter = 1
    while aside.exists():
        counter += 1
        aside = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{stamp}-{counter}")
    os.rename(path, aside)
    for suffix in SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{path}{suffix}", f"{aside}{suffix}")
    return aside


def refuse_after_corruption(path: Path) -> None:
    """No journal but a damaged one set aside: refuse, rather than start a new account."""
    if path.exists():
        return
    aside = sorted(path.parent.glob(f"{path.name}{CORRUPT_SUFFIX}*"))
    damaged = [p for p in aside if not p.name.endswith(SIDE_FILES)]
    if damaged:
        raise JournalError(
            f"journal {path} was found damaged and set aside as {damaged[-1].name}: not starting "
            f"a new account in its place. To start this strategy afresh, remove "
            f"{', '.join(p.name for p in damaged)} from {path.parent}"
        )


def checkpoint_pages(path: Path) -> int:
    """The WAL pages after which the journal at `path` is checkpointed: always the same for a
    path, spread evenly over [CHECKPOINT_MIN_PAGES, CHECKPOINT_MAX_PAGES] across paths."""
    span = CHECKPOINT_MAX_PAGES - CHECKPOINT_MIN_PAGES + 1
    return CHECKPOINT_MIN_PAGES + zlib.crc32(os.fsencode(path)) % span


def reserve_wal(path: Path, page_size: int, pages: int) -> None:
    """Allocate now the disk space the WAL of the journal at `path` takes once it holds `pages`.

    SQLite appends to a WAL until its checkpoint and, while the journal is open, never shrinks
    it (it removes it when the journal closes; the next open reserves it again). While it
    grows, each commit's flush has the file system allocate blocks and journal that, and a
    thousand workers committing in the same second grow their WALs in small steps among each
    other's: their extents multiply (ext4 allocates and frees extent blocks, a discard each on
    a `discard` mount) and the flushes wait on each other's metadata. In a 1,000-strategy burst
    the flush took a median 1 ms in the first minute and 265-372 ms in the next two
    (docs/performance.md, "Candle-burst latency"). Allocated up front (posix_fallocate: the
    blocks read as zeros), the frames land in blocks the file already has. SQLite reads frames
    only up to the first whose salt or checksum does not match, so the zeros past them are
    never taken for frames. Best effort: a file system that refuses, or a full disk, leaves the
    WAL growing as before. Only the worker opens its journal (under its lock): nothing else
    writes the WAL meanwhile.
    """
    size = _WAL_HEADER + (_FRAME_HEADER + page_size) * (pages + _SLACK_FRAMES)
    try:
        fd = os.open(
            f"{path}-wal", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, JOURNAL_MODE
        )
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
