"""Defect 1 of the hardening pass: fork-server replies must stay matched to their requests.

A stopped (or very slow) fork server used to answer a timed-out request late, and the daemon took
that late answer for the next request's: the next deploy got the previous strategy's pid, and the
late worker ran untracked. Each request now carries an id; a late reply's worker is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import psutil

from tests.helpers import wait_until
from tests.supervisor.daemons import running_daemon, strategy


def title(process: psutil.Process) -> str:
    """What `ps` shows (setproctitle pads argv with empty strings)."""
    return " ".join(arg for arg in process.cmdline() if arg)


def fork_server_pid(daemon_pid: int) -> int:
    children = psutil.Process(daemon_pid).children()
    return next(child.pid for child in children if title(child) == "qkt fork-server")


def workers_named(name: str) -> list[int]:
    """Pids of live processes titled `qkt worker NAME` (zombies excluded)."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if title(process) == f"qkt worker {name}" and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
    return found


def test_a_late_fork_server_reply_is_not_taken_for_the_next_request(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "s", "--spawn", "fork") as daemon:
        server = fork_server_pid(daemon.proc.pid)
        os.kill(server, signal.SIGSTOP)
        try:
            late = daemon.post("/deploy", json={"file": str(strategy(tmp_path, "fs_a"))})
            assert late.status_code >= 500, late.text  # the server did not answer in time
        finally:
            os.kill(server, signal.SIGCONT)

        response = daemon.post("/deploy", json={"file": str(strategy(tmp_path, "fs_b"))})
        assert response.status_code == 201, response.text
        pid = daemon.wait_state("fs_b", "running")["pid"]
        # fs_b's pid is fs_b's worker, not the one the fork server started late for fs_a...
        assert title(psutil.Process(pid)) == "qkt worker fs_b"

        # ...and that late one is killed, not left trading untracked.
        def untracked() -> list[int]:
            tracked = {e["pid"] for e in daemon.entries().values() if e["pid"]}
            return [p for p in workers_named("fs_a") if p not in tracked]

        wait_until(
            lambda: not untracked(),
            timeout=30,
            what="the late worker of fs_a to be gone",
        )
        assert "had timed out: killing it" in daemon.state.daemon_log.read_text()
