"""The CLI's global behaviour: version, help, usage errors, one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from qkt import __version__
from tests.helpers import PYTHON


def qkt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "qkt", *args], capture_output=True, text=True, timeout=60)


def test_version_prints_the_package_version() -> None:
    result = qkt("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"qkt {__version__}"


def test_daemon_version_prints_the_version_before_anything_runs(tmp_path: Path) -> None:
    # The container's entrypoint is `qkt daemon --load-dir /strategies ...`, so `docker run IMAGE
    # --version` asks the daemon command; it must answer without starting (or needing) anything.
    state = tmp_path / "state"
    result = qkt("--state-dir", str(state), "daemon", "--load-dir", str(tmp_path), "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"qkt {__version__}"
    assert not state.exists()  # no daemon started: it would have made its state dir


def test_help_lists_the_commands() -> None:
    result = qkt("--help")
    assert result.returncode == 0
    assert "check" in result.stdout


def test_unknown_flag_is_a_usage_error_with_exit_2() -> None:
    result = qkt("--no-such-flag")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
