"""The journal's WAL: its room on disk taken when it opens, a journal killed with it reopens
whole, journals opened together do not checkpoint on the same candle, and a candle's commit
writes a page for each table it adds to and no more."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from qkt.engine import EngineConfig, StrategyEngine
from qkt.worker.journal import SqliteJournal
from qkt.worker.journalfile import CHECKPOINT_MAX_PAGES, CHECKPOINT_MIN_PAGES, checkpoint_pages
from tests.worker.test_journal import PROGRAM, _candle, _step


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_commits_land_in_room_the_wal_took_when_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = SqliteJournal(path)
    wal = Path(f"{path}-wal")
    room = _allocated(wal)
    assert room >= (24 + 4096) * CHECKPOINT_MIN_PAGES  # a frame: its header and a page
    size = wal.stat().st_size
    engine = StrategyEngine(PROGRAM, EngineConfig(), journal)
    for i in range(50):
        _step(journal, engine, _candle(i, str(100 + i % 7)))
    # Neither a block more nor a byte longer: no commit's flush had to allocate.
    assert (_allocated(wal), wal.stat().st_size) == (room, size)
    journal.close()


KILLED = """
import os, sys
from pathlib import Path
from qkt.engine import EngineConfig, StrategyEngine
from qkt.worker.journal import SqliteJournal
from tests.worker.test_journal import PROGRAM, _candle, _step
journal = SqliteJournal(Path(sys.argv[1]))
engine = StrategyEngine(PROGRAM, EngineConfig(), journal)
for i in range(5):
    _step(journal, engine, _candle(i, "100"))
os._exit(0)  # as a kill -9 would: no close, no checkpoint, the WAL left as it is
"""


def test_a_journal_killed_with_its_reserved_wal_reopens_with_every_commit(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    subprocess.run([sys.executable, "-c", KILLED, str(path)], check=True, cwd=Path.cwd())
    # The reserved room: zeros past the frames.
    assert Path(f"{path}-wal").stat().st_size > 1_000_000
    reopened = SqliteJournal(path)  # checks the file (quick_check) as it opens
    assert [ts for ts, _ in reopened.equity_curve()] == [_candle(i, "1").end_ms for i in range(5)]
    assert len(reopened.trades()) == 1
    reopened.close()


def test_journals_opened_together_checkpoint_on_different_candles(tmp_path: Path) -> None:
    journals = [SqliteJournal(tmp_path / f"s{i}" / "journal.sqlite") for i in range(12)]
    assert all(
        CHECKPOINT_MIN_PAGES <= checkpoint_pages(j.path) <= CHECKPOINT_MAX_PAGES for j in journals
    )
    for journal in journals:
        journal._db.execute("PRAGMA synchronous=OFF")  # only the checkpoints are looked at
    engines = [StrategyEngine(PROGRAM, EngineConfig(), j) for j in journals]
    first_sizes = [j.path.stat().st_size for j in journals]
    checkpointed_at: dict[int, int] = {}  # journal -> the candle whose commit checkpointed it
    for n in range(800):
        for i, (journal, engine) in enumerate(zip(journals, engines, strict=True)):
            if i in checkpointed_at:
                continue
            _step(journal, engine, _candle(n, str(100 + n % 9)))
            if journal.path.stat().st_size > first_sizes[i]:  # the database grows at a checkpoint
                checkpointed_at[i] = n
        if len(checkpointed_at) == len(journals):
            break
    assert len(checkpointed_at) == len(journals)
    assert len(set(checkpointed_at.values())) >= len(journals) // 2, checkpointed_at
    for journal in journals:
        journal.close()


def test_a_candle_that_fills_commits_one_page_per_table_it_writes(tmp_path: Path) -> None:
    # A thousand workers flush their commits in the same second: every page a commit writes is
    # a WAL frame to write and flush. A fill's candle writes a signal, an order, a fill, an
    # equity row and the state: five tables, five pages (AUTOINCREMENT would add a sixth, its
    # sqlite_sequence row, in every commit).
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    engine = StrategyEngine(PROGRAM, EngineConfig(), journal)
    db = journal._db
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the next commit writes from frame 0
    _step(journal, engine, _candle(0, "100"))
    frames = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    assert len(journal.trades()) == 1
    assert frames == 5
    journal.close()
