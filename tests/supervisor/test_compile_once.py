"""Compile once: a worker restart (crash or daemon restart) runs the source that was deployed,
whatever the file on disk holds by then, and `qkt status` says when the two differ."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon

DEPLOYED = """\
STRATEGY edited VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN POSITION.btc > 0 THEN CLOSE btc
"""
# Edits made after the deploy: one that needs a hub key the daemon never acquired, one that
# does not compile at all.
NEW_STREAM = DEPLOYED.replace(
    "EVERY 1s\n", "EVERY 1s\n        eth = SIM:ETHUSDT EVERY 1s\n"
).replace("VERSION 1", "VERSION 2")
SYNTAX_ERROR = "STRATEGY edited VERSION 3\nRULES\n    WHEN\n"
DEPLOYED_HASH = hashlib.sha256(DEPLOYED.encode()).hexdigest()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("compile_once")
    with running_daemon(root / "s", "--speed", "20", worker=REAL_WORKER) as running:
        yield running


@pytest.mark.parametrize("edit", [NEW_STREAM, SYNTAX_ERROR], ids=["new-stream", "syntax-error"])
def test_a_crash_restart_runs_the_deployed_rules_not_the_edited_file(
    daemon: RunningDaemon, tmp_path: Path, edit: str
) -> None:
    file = tmp_path / "edited.qkt"
    file.write_text(DEPLOYED)
    # Each case deploys `edited` from a file of its own: start on fresh books (issue 16).
    entry = daemon.post("/deploy", json={"file": str(file), "fresh": True}).json()
    pid = entry["pid"]
    daemon.seen_pids.add(pid)
    before = daemon.get("/status/edited").json()
    assert before["source_hash"] == DEPLOYED_HASH and before["file_changed"] is False

    file.write_text(edit)
    os.kill(pid, signal.SIGKILL)
    again = wait_until(
        lambda: (
            (e := daemon.entries()["edited"])["state"] == "running" and e["restarts"] == 1 and e
        ),
        timeout=30,
        what="the restart after kill -9",
    )
    assert again["pid"] != pid and again["keys"] == ["SIM:BTCUSDT:1s"]
    status = daemon.get("/status/edited").json()
    assert status["version"] == 1 and status["keys"] == ["SIM:BTCUSDT:1s"]  # the deployed rules
    assert status["source_hash"] == DEPLOYED_HASH
    assert status["file_changed"] is True
    assert "SIM:ETHUSDT:1s" not in {k["key"] for k in daemon.get("/hub").json()}
    human = daemon.cli("status", "edited")
    assert human.returncode == 0, human.stderr
    source = [
        line.split(None, 1) for line in human.stdout.splitlines() if line.startswith("source")
    ]
    assert source == [
        [
            "source",
            f"sha256 {DEPLOYED_HASH[:12]}: the file on disk differs "
            "(restarts run the deployed source)",
        ]
    ]
    assert daemon.post("/stop/edited").status_code == 200


def test_a_daemon_restart_runs_the_deployed_source(tmp_path: Path) -> None:
    file = tmp_path / "edited.qkt"
    file.write_text(DEPLOYED)
    with running_daemon(tmp_path / "s", worker=REAL_WORKER) as daemon:
        assert daemon.post("/deploy", json={"file": str(file)}).status_code == 201
        file.write_text(SYNTAX_ERROR)
        assert daemon.stop() == 0
    with running_daemon(tmp_path / "s", worker=REAL_WORKER) as daemon:
        daemon.wait_state("edited", "running", timeout=30)
        status = daemon.get("/status/edited").json()
        assert status["source_hash"] == DEPLOYED_HASH and status["file_changed"] is True
        # Putting the deployed text back makes the two agree again.
        file.write_text(DEPLOYED)
        assert daemon.get("/status/edited").json()["file_changed"] is False
