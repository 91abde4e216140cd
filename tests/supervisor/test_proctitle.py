"""Process titles: `ps` tells the daemon, its fork server and each worker apart."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.supervisor.daemons import REAL_WORKER, running_daemon

TRADER = """\
STRATEGY {name} VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01
"""


def cmdline(pid: int) -> str:
    """What `ps -o args` shows: /proc/<pid>/cmdline, NUL-separated arguments joined."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode()


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_ps_names_the_daemon_the_fork_server_and_every_worker(tmp_path: Path, spawn: str) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    for name in ("alpha", "beta_2"):
        (folder / f"{name}.qkt").write_text(TRADER.format(name=name))
    root = tmp_path / "s"
    args = ("--load-dir", str(folder), "--spawn", spawn)
    with running_daemon(root, *args, worker=REAL_WORKER) as daemon:
        entries = {name: daemon.wait_state(name, "running") for name in ("alpha", "beta_2")}

        assert cmdline(daemon.proc.pid) == f"qkt daemon {root}"
        for name, entry in entries.items():
            assert cmdline(entry["pid"]) == f"qkt worker {name}"
            # top's default column: the kernel's 15-byte name of the process.
            assert (
                Path(f"/proc/{entry['pid']}/comm").read_text().strip() == f"qkt worker {name}"[:15]
            )
        others = [
            cmdline(child.pid)
            for child in psutil.Process(daemon.proc.pid).children()
            if child.pid not in {e["pid"] for e in entries.values()}
        ]
        assert others == (["qkt fork-server"] if spawn == "fork" else [])
