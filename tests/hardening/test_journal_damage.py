"""Defect 11 (a damaged journal traded on) and the journal's part of defect 9 (0600 files).

A journal with one page overwritten used to open as if nothing happened, and the worker kept
trading on a database `integrity_check` calls malformed. Now `quick_check` runs at open: the file
is moved aside, the worker refuses to start and says why.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from qkt.hub import HubEndpoints
from qkt.worker import EXIT_FAILED
from qkt.worker.journal import JournalError, SqliteJournal
from qkt.worker.spec import WorkerSpec
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, running_daemon
from tests.worker.harness import FLIP, FLIP_KEY, hub_process, running, status_when, worker_args


def overwrite_page(path: Path, table: str) -> None:
    """Fill the root page of `table` with garbage, as a torn write or a bad sector would."""
    with closing(sqlite3.connect(path)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    with open(path, "r+b") as f:
        f.seek((root[0] - 1) * page_size)
        f.write(bytes([0xA5]) * page_size)


def a_journal_with_rows(path: Path) -> None:
    journal = SqliteJournal(path)
    with journal.transaction():
        for ts in range(50):
            journal._db.execute(
                "INSERT INTO equity (ts, balance, equity, realized, unrealized) "
                "VALUES (?, '1', '1', '0', '0')",
                (ts,),
            )
    journal.close()


def test_a_journal_with_an_overwritten_page_is_refused_and_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    a_journal_with_rows(path)
    overwrite_page(path, "equity")
    damaged = path.read_bytes()

    with pytest.raises(JournalError, match="damaged") as refused:
        SqliteJournal(path)

    assert "not trading on it" in refused.value.message
    assert not path.exists()
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("journal.sqlite.corrupt-")]
    assert aside.read_bytes() == damaged  # kept as it was, for whoever recovers it
    # Not replaced by a new, empty account at the next start either.
    with pytest.raises(JournalError, match="set aside"):
        SqliteJournal(path)
    assert not path.exists()
    # Once the user removes the damaged copy, the strategy may start afresh.
    aside.unlink()
    SqliteJournal(path).close()


def test_a_file_that_is_not_sqlite_is_kept_aside_too(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"not sqlite at all " * 500)
    with pytest.raises(JournalError, match="damaged"):
        SqliteJournal(path)
    assert [p.name[:22] for p in tmp_path.iterdir()] == ["journal.sqlite.corrupt"]


def test_a_locked_journal_is_not_taken_for_a_damaged_one(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    a_journal_with_rows(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(JournalError) as refused:
            SqliteJournal(path)
        other.execute("ROLLBACK")
    assert "damaged" not in refused.value.message
    assert path.exists()


def test_the_journal_and_its_wal_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "strategy"
    journal = SqliteJournal(folder / "journal.sqlite")
    with journal.transaction():
        journal._db.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir() if p.name.startswith("j")
    }
    journal.close()
    assert modes == {
        "journal.sqlite": 0o600,
        "journal.sqlite-wal": 0o600,
        "journal.sqlite-shm": 0o600,
    }
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_symlink_in_place_of_the_journal_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "someone_elses.db"
    target.write_bytes(b"")
    (tmp_path / "strategy").mkdir()
    (tmp_path / "strategy" / "journal.sqlite").symlink_to(target)
    with pytest.raises(JournalError, match="cannot open journal"):
        SqliteJournal(tmp_path / "strategy" / "journal.sqlite")
    assert target.read_bytes() == b""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubEndpoints]:
    with hub_process(tmp_path_factory.mktemp("hub"), [FLIP_KEY]) as endpoints:
        yield endpoints


def test_a_worker_refuses_to_trade_on_a_damaged_journal_and_says_so(
    tmp_path: Path, hub: HubEndpoints
) -> None:
    strategy = tmp_path / "flip.qkt"
    strategy.write_text(FLIP)
    spec = WorkerSpec(
        name="flip",
        file=str(strategy),
        source=FLIP,
        state_dir=str(tmp_path / "state"),
        hub_pub=hub.pub,
        hub_snapshot=hub.snapshot,
    )
    with running(worker_args(spec.to_json())) as worker:
        port = int(wait_until(lambda: spec.port_file.exists() and spec.port_file.read_text(), 20))
        status_when(port, lambda s: s["trades"] >= 4)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    overwrite_page(spec.journal_file, "fills")

    with running(worker_args(spec.to_json())) as worker:
        assert worker.wait(timeout=60) == EXIT_FAILED
    assert not spec.port_file.exists()  # it never served, so it never traded
    log = spec.log_file.read_text()
    assert "is damaged" in log and "not trading on it" in log
    folder = spec.journal_file.parent
    assert [p.name for p in folder.glob("journal.sqlite.corrupt-*") if "-wal" not in p.name]
    assert not spec.journal_file.exists()
    assert os.listdir(folder)


def test_the_daemon_shows_why_a_strategy_with_a_damaged_journal_does_not_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flip.qkt"
    path.write_text(FLIP)
    with running_daemon(tmp_path / "s", worker=REAL_WORKER) as daemon:
        assert daemon.post("/deploy", json={"file": str(path)}).status_code == 201
        wait_until(lambda: daemon.get("/status/flip").json()["trades"] >= 2, 60, what="trades")
        assert daemon.post("/stop/flip").status_code == 200
        journal = daemon.state.journal("flip")
        overwrite_page(journal, "fills")

        response = daemon.post("/deploy", json={"file": str(path)})

        # Refused at start, and the answer says why (the reason comes from the worker's log).
        assert response.status_code >= 400
        message = response.json()["error"]["message"]
        assert "is damaged" in message and "not trading on it" in message
        assert not journal.exists() and list(journal.parent.glob("journal.sqlite.corrupt-*"))


def test_a_journal_an_older_qkt_left_readable_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    a_journal_with_rows(path)
    with closing(sqlite3.connect(path)) as older:  # holds the WAL open, as a killed worker would
        older.execute("INSERT INTO meta (key, value) VALUES ('older', 'qkt')")
        older.commit()
        for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            each.chmod(0o644)
        SqliteJournal(path).close()
        modes = [stat.S_IMODE(Path(f"{path}{s}").stat().st_mode) for s in ("", "-wal", "-shm")]
    assert modes == [0o600] * 3
