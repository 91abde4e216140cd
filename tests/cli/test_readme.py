"""The README's console session runs as written, against a real daemon: it cannot rot.

Every ```console block of README.md is a session: `$ command` lines, each followed by what the
terminal shows (stdout and stderr). The test runs the commands in order from the checkout (with
`.venv/bin` first on PATH, as the README says, and a fresh state dir) and compares each output
line's *shape* with the README's: the same words in the same places, where a word holding a
digit or a `/` (a number, a time, a port, a path) may be any other such word. A `$ qkt daemon
... &` line starts the daemon in the background (real workers) and waits until it answers. An
output that starts with `qkt: error:` must come with a non-zero exit code, any other with 0.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO_ROOT
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, child_env, running_daemon

README = REPO_ROOT / "README.md"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def sessions(text: str) -> list[list[Step]]:
    """The console blocks of `text`, each as its steps."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        steps: list[Step] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            elif steps:
                steps[-1].expected.append(line)
        found.append(steps)
    return found


def word_pattern(word: str) -> str:
    if any(c.isdigit() for c in word) or "/" in word:
        return r"\S+"
    return re.escape(word)


def same_shape(expected: str, actual: str) -> bool:
    words = expected.split()
    pattern = r"\s*" + r"\s+".join(word_pattern(w) for w in words) + r"\s*"
    return re.fullmatch(pattern, actual) is not None


def test_same_shape_is_strict_about_words_and_loose_about_numbers() -> None:
    assert same_shape("ema_cross  40347  running", "ema_cross  5  running")
    assert same_shape("state dir  /home/me/x", "state dir  /tmp/y/s")
    assert not same_shape("ema_cross  40347  running", "ema_cross  40347  stopped")
    assert not same_shape("NAME PORT", "NAME PORT STATE")
    steps = sessions("x\n```console\n$ qkt list\nNAME\n$ qkt a &\n```\n")
    assert [(s.command, s.expected) for s in steps[0]] == [("qkt list", ["NAME"]), ("qkt a &", [])]


@pytest.fixture
def shell_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    bin_dir = str(Path(PYTHON).parent)  # the virtualenv's bin, where `qkt` is
    env = child_env(QKT_STATE_DIR=str(tmp_path / "s"), NO_COLOR="1")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    yield env


@pytest.mark.slow
def test_the_readme_console_session_runs_as_written(
    tmp_path: Path, shell_env: dict[str, str]
) -> None:
    found = sessions(README.read_text())
    assert found, "README.md has no ```console session"
    daemon: RunningDaemon | None = None
    with contextlib.ExitStack() as stack:
        for steps in found:
            for step in steps:
                argv = shlex.split(step.command)
                if argv[:2] == ["qkt", "daemon"] and argv[-1] == "&":
                    args = argv[2:-1]
                    daemon = stack.enter_context(
                        running_daemon(tmp_path / "s", *args, worker=REAL_WORKER)
                    )
                    continue
                run = subprocess.run(
                    step.command,
                    shell=True,
                    cwd=REPO_ROOT,
                    env=shell_env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=120,
                )
                lines = run.stdout.splitlines()
                failing = bool(step.expected) and step.expected[0].startswith("qkt: error:")
                assert (run.returncode != 0) == failing, (step.command, run.stdout)
                assert len(lines) == len(step.expected), (step.command, run.stdout)
                for want, got in zip(step.expected, lines, strict=True):
                    assert same_shape(want, got), (step.command, want, got)
    assert daemon is not None, "the session starts no daemon"
