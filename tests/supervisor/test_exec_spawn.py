"""`--spawn exec` passes the spec on the command line, and Linux refuses one argument over 128 KiB:
a strategy file near the 1 MiB cap (its source travels in the spec) still starts, through a
private spec file, and runs what was deployed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from qkt.paths import StateDir
from qkt.supervisor.spawn import MAX_ARG_BYTES
from tests.supervisor.daemons import REAL_WORKER, running_daemon, strategy

pytestmark = pytest.mark.slow


def test_a_source_too_big_for_an_argument_starts_with_exec_spawn(tmp_path: Path) -> None:
    path = strategy(tmp_path / "files", "big")
    padding = "-- " + "x" * 96 + "\n"
    text = padding * (3 * MAX_ARG_BYTES // len(padding)) + path.read_text()
    assert len(text.encode()) > 2 * MAX_ARG_BYTES  # well past 128 KiB
    path.write_text(text)
    root = tmp_path / "s"
    with running_daemon(root, "--spawn", "exec", worker=REAL_WORKER) as daemon:
        deployed = daemon.cli("deploy", str(path))
        assert deployed.returncode == 0, deployed.stderr
        (entry,) = daemon.get("/list").json()
        assert entry["state"] == "running"
        spec = StateDir(root).strategy_dir("big") / "spec.json"
        assert stat.S_IMODE(spec.stat().st_mode) == 0o600  # the source is nobody else's to read
        status = daemon.get("/status/big").json()
        assert status["file_changed"] is False
