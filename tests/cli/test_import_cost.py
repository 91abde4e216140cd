"""The regression guard of issue 16's speed: the CLI's read-only commands import no framework.

A command that only reads (`--version`, `--help`, `list`, `status`, `logs`, `daemon status`) must
start in a few times Python's own start-up (bench/bench_cli.py measures it); what made it slow
was importing FastAPI, pydantic, uvicorn and the engine on the way. Here each command runs in a
fresh interpreter against a real daemon, which then reports what got imported.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PYTHON
from tests.supervisor.daemons import RunningDaemon, child_env, running_daemon, strategy

HEAVY = ("fastapi", "pydantic", "uvicorn", "starlette", "requests", "httpx", "rich", "zmq")
HEAVY_QKT = ("qkt.engine", "qkt.dsl", "qkt.hub", "qkt.worker.entry", "qkt.worker.runner")

PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from qkt.cli.main import main
    out = io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out):
            main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code or 0
    loaded = sorted(name for name in sys.modules)
    print(json.dumps({"code": code, "out": out.getvalue(), "modules": loaded}))
    """
)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("imports")
    with running_daemon(root / "s") as running:
        path = strategy(root / "files", "alpha")
        assert running.cli("deploy", str(path)).returncode == 0
        yield running


def imported_by(daemon: RunningDaemon, *args: str) -> tuple[dict[str, object], list[str]]:
    done = subprocess.run(
        [PYTHON, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(QKT_STATE_DIR=daemon.root),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    heavy = [
        name
        for name in report["modules"]
        if name.split(".")[0] in HEAVY or name.startswith(HEAVY_QKT)
    ]
    return report, heavy


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["list", "--help"],
        ["list"],
        ["list", "-a", "--json"],
        ["status"],
        ["status", "alpha"],
        ["logs", "alpha", "--lines", "5"],
        ["daemon", "status"],
    ],
    ids=" ".join,
)
def test_read_only_commands_import_no_framework(daemon: RunningDaemon, args: list[str]) -> None:
    report, heavy = imported_by(daemon, *args)
    assert report["code"] == 0, report["out"]
    assert report["out"], "the command printed nothing: it did not run"
    assert heavy == []


def test_the_probe_would_see_a_heavy_import(daemon: RunningDaemon, tmp_path: Path) -> None:
    """The guard can fail: a command that compiles (`check`) does load the DSL."""
    path = strategy(tmp_path, "beta")
    report, heavy = imported_by(daemon, "check", str(path))
    assert report["code"] == 0
    assert "qkt.dsl" in heavy
