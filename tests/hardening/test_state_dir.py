"""Defects 8 and 9 (the file side): the state dir is trusted only if it is ours, and what is in it
is nobody else's to read.

Before: a root daemon on a world-writable folder another user prepared appended log lines through
a planted symlink into a root-owned file; logs, journals and strategy folders were 0644/0755, so
another local user read every fill with sqlite3.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from qkt import log as qkt_log
from qkt.paths import StateDir, UntrustedStateDirError
from tests.supervisor.daemons import REAL_WORKER, qkt, running_daemon, strategy

NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user may traverse (pytest's own tmp folders are 0700: another user could
    not read anything there with or without the fix)."""
    folder = Path(tempfile.mkdtemp(prefix="qkt-hardening-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def readable_by_nobody(paths: list[Path]) -> list[str]:
    """What user nobody manages to read of `paths` (the first one also as an SQLite journal):
    a forked child drops to nobody with setuid and tries each; its findings come back on a pipe.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        found = []
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            for path in paths:
                try:
                    with open(path, "rb") as f:
                        f.read(1)
                    found.append(str(path))
                except OSError:
                    pass
            try:
                db = sqlite3.connect(f"file:{paths[0]}?mode=ro", uri=True)
                db.execute("SELECT COUNT(*) FROM fills").fetchone()
                found.append("the fills")
            except sqlite3.Error:
                pass
        finally:
            os.write(write_end, "\n".join(found).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read().decode()
    os.waitpid(child, 0)
    return [line for line in data.split("\n") if line]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@needs_root
def test_a_state_dir_owned_by_another_user_is_refused(open_folder: Path) -> None:
    root = open_folder / "planted"
    root.mkdir(mode=0o700)
    os.chown(root, NOBODY, NOBODY)
    result = qkt("daemon", "--state-dir", str(root), timeout=60)
    assert result.returncode != 0
    assert result.stderr.startswith("qkt: error: state dir ") and "belongs to user 'nobody'" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert list(root.iterdir()) == []  # nothing written into it


def test_a_state_dir_others_may_write_to_is_refused(open_folder: Path) -> None:
    root = open_folder / "shared"
    root.mkdir()
    root.chmod(0o777)
    with pytest.raises(UntrustedStateDirError, match="writable by other users"):
        StateDir(root).ensure()
    result = qkt("daemon", "--state-dir", str(root), timeout=60)
    assert result.returncode != 0 and "writable by other users (mode 0777)" in result.stderr
    assert list(root.iterdir()) == []


def test_a_state_dir_of_an_older_qkt_is_made_private(open_folder: Path) -> None:
    root = open_folder / "older"
    for folder in (root, root / "logs", root / "strategies"):
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)
    StateDir(root).ensure()
    assert [mode(f) for f in (root, root / "logs", root / "strategies")] == [0o700] * 3


def test_a_log_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "daemon.log").symlink_to(victim)
    with pytest.raises(OSError):
        qkt_log.PrivateLogFileHandler(tmp_path / "logs" / "daemon.log")
    assert victim.read_text() == "precious\n"


def test_a_new_log_file_is_private(tmp_path: Path) -> None:
    handler = qkt_log.PrivateLogFileHandler(tmp_path / "a.log")
    handler.emit(logging.makeLogRecord({"msg": "hello"}))
    handler.close()
    assert mode(tmp_path / "a.log") == 0o600


@needs_root
def test_another_user_reads_nothing_of_a_running_daemon(open_folder: Path) -> None:
    root = open_folder / "state"
    folder = open_folder / "mine"
    strategy(folder, "private")
    with running_daemon(root, "--load-dir", str(folder), worker=REAL_WORKER) as daemon:
        daemon.wait_state("private", "running", timeout=60)
        state = StateDir(root)
        journal = state.journal("private")
        files = {
            state.daemon_log: 0o600,
            state.log_file("private"): 0o600,
            state.deployments: 0o600,
            state.control_token: 0o600,
            state.control_port: 0o600,
            state.daemon_pid: 0o600,
            journal: 0o600,
            Path(f"{journal}-wal"): 0o600,
            Path(f"{journal}-shm"): 0o600,
            state.strategy_dir("private") / "worker.lock": 0o600,
            state.strategy_dir("private") / "status.port": 0o600,
            root: 0o700,
            state.logs_dir: 0o700,
            state.strategies_dir: 0o700,
            state.strategy_dir("private"): 0o700,
        }
        found = {path: mode(path) for path in files if path.exists()}
        assert found == {path: want for path, want in files.items() if path in found}
        assert journal in found and state.log_file("private") in found

        # Even with the root folder opened up, nobody can read a journal, a log or the token.
        root.chmod(0o711)
        for sub in (state.logs_dir, state.strategies_dir, state.strategy_dir("private")):
            sub.chmod(0o711)
        secrets = [journal, state.log_file("private"), state.control_token]
        assert readable_by_nobody(secrets) == []
