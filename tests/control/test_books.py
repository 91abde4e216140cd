"""A name's books (qkt.supervisor.archive) without a daemon: reuse, archive, the stopped list."""

from __future__ import annotations

from pathlib import Path

import pytest

from qkt.errors import ConflictError
from qkt.paths import StateDir
from qkt.supervisor import archive
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.figures import figures_of


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "s").ensure()


def books(state: StateDir, deployment: Deployment) -> None:
    """What a deploy leaves: the marker, a journal and a rotated log."""
    archive.remember_books(state, deployment)
    state.journal(deployment.name).write_bytes(b"journal")
    state.log_file(deployment.name).write_text("now\n")
    state.log_file(deployment.name).with_name("x.log.1").write_text("before\n")


def test_same_file_and_flags_resume_others_must_choose(state: StateDir, tmp_path: Path) -> None:
    first = Deployment("x", str(tmp_path / "a.qkt"))
    books(state, first)
    archive.check_reuse(state, first, resume=False, fresh=False)  # the same: carries on
    other = Deployment("x", str(tmp_path / "b.qkt"), balance="500")
    with pytest.raises(ConflictError) as refused:
        archive.check_reuse(state, other, resume=False, fresh=False)
    assert "--resume" in refused.value.message and "--fresh" in refused.value.message
    assert "balance '10000' -> '500'" in refused.value.message
    archive.check_reuse(state, other, resume=True, fresh=False)
    assert state.journal("x").exists()
    with pytest.raises(ConflictError):
        archive.check_reuse(state, other, resume=True, fresh=True)
    archive.check_reuse(state, other, resume=False, fresh=True)
    assert not state.journal("x").exists() and not state.log_file("x").exists()
    (moved,) = (state.root / "archive").iterdir()
    assert (moved / "strategy" / "journal.sqlite").read_bytes() == b"journal"
    assert sorted(p.name for p in (moved / "logs").iterdir()) == ["x.log", "x.log.1"]


def test_a_journal_without_a_marker_resumes(state: StateDir, tmp_path: Path) -> None:
    state.strategy_dir("old").mkdir()
    state.journal("old").write_bytes(b"from qkt run")
    archive.check_reuse(
        state, Deployment("old", str(tmp_path / "b.qkt")), resume=False, fresh=False
    )


def test_purge_deletes_and_leaves_other_names_alone(state: StateDir, tmp_path: Path) -> None:
    books(state, Deployment("x", str(tmp_path / "a.qkt")))
    state.log_file("x-2").write_text("another strategy's log\n")
    assert archive.archive_books(state, "x", purge=True) is None
    assert not state.strategy_dir("x").exists() and not state.log_file("x").exists()
    assert state.log_file("x-2").exists()  # `x-2.log` is not one of x's logs
    assert archive.archive_books(state, "x") is None  # nothing left to move


def test_retired_strategies_round_trip_and_survive_damage(state: StateDir, tmp_path: Path) -> None:
    deployment = Deployment("x", str(tmp_path / "a.qkt"), balance="2500")
    status = {"equity": "2510.5", "realized": "10.5", "unrealized": "0", "trades": 4}
    archive.retire(state, deployment, 0, figures_of(status, now_ms=1))
    (found,) = archive.load_retired(state).values()
    assert found.name == "x" and found.args.balance == "2500" and found.exit_code == 0
    assert found.figures is not None and found.figures.equity == "2510.5"
    assert archive.unretire(state, "x") and not archive.unretire(state, "x")
    (state.root / archive.RETIRED_FILE).write_text("{not json")
    assert archive.load_retired(state) == {}
    assert figures_of({"equity": "1"}) is None  # a status without the figures
