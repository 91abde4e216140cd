"""The CLI's global behaviour: version, help, usage errors, one-line errors."""

from __future__ import annotations

import subprocess

from qkt import __version__
from tests.helpers import PYTHON


def qkt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "qkt", *args], capture_output=True, text=True, timeout=60)


def test_version_prints_the_package_version() -> None:
    result = qkt("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"qkt {__version__}"


def test_help_lists_the_commands() -> None:
    result = qkt("--help")
    assert result.returncode == 0
    assert "check" in result.stdout


def test_unknown_flag_is_a_usage_error_with_exit_2() -> None:
    result = qkt("--no-such-flag")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
