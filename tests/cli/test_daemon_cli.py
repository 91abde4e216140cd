"""The CLI against a real daemon: tables, --json, one-line errors and exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PYTHON, wait_until
from tests.supervisor.daemons import RunningDaemon, child_env, qkt, running_daemon, strategy

BROKEN = """\
STRATEGY broken VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN btc.close > 100 THEN BUY btc SIZING 1 GARBAGE_HERE
    WHEN eth.close > 100 THEN SELL btc SIZING 1
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("cli")
    with running_daemon(root / "s", "--speed", "10") as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("files")
    strategy(folder, "one")
    strategy(folder, "two")
    (folder / "broken.qkt").write_text(BROKEN)
    return folder


def one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr == f"qkt: error: {message}\n"
    assert result.stdout == ""


def test_deploy_list_status_logs_stop(daemon: RunningDaemon, files: Path) -> None:
    deployed = daemon.cli("deploy", str(files / "one.qkt"))
    assert deployed.returncode == 0, deployed.stderr
    header, row = deployed.stdout.splitlines()
    assert header.split() == ["NAME", "PORT", "STATE", "STARTED"]
    assert row.split()[0] == "one" and row.split()[2] == "running"

    as_json = daemon.cli(
        "deploy",
        str(files / "two.qkt"),
        "--as",
        "second",
        "--json",
        "--balance",
        "500",
        "--speed",
        "10",
    )
    entry = json.loads(as_json.stdout)
    assert entry["name"] == "second" and entry["args"]["balance"] == "500"

    listed = daemon.cli("list")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "UPTIME", "PORT", "TRADES", "STATE", "PID", "RESTARTS"]
    assert [line.split()[0] for line in lines[1:]] == ["one", "second"]

    entries = json.loads(daemon.cli("list", "--json").stdout)
    assert [e["name"] for e in entries] == ["one", "second"]
    assert [e["pid"] for e in entries] == [e["pid"] for e in daemon.get("/list").json()]

    status = json.loads(daemon.cli("status", "one", "--json").stdout)
    assert status["name"] == "one" and status["state"] == "running" and "equity" in status
    assert status["equity"] == "10000"  # exact in JSON...
    human = daemon.cli("status", "one").stdout.splitlines()
    assert "equity       10000.00 (balance 10000.00, start 10000.00)" in human  # ...cents here
    assert human[1].startswith("state        running, ") and not any("{" in x for x in human)
    rollup = daemon.cli("status").stdout.splitlines()
    assert rollup[0].split() == [
        "NAME",
        "STATE",
        "TRADES",
        "EQUITY",
        "REALIZED",
        "UNREALIZED",
        "POSITIONS",
    ]
    assert rollup[2].split()[:2] == ["second", "running"]
    assert rollup[2].split()[3:6] == ["500.00", "0.00", "0.00"]
    assert rollup[2].endswith("  0")  # numbers end at the right edge of their column
    assert len(json.loads(daemon.cli("status", "--json").stdout)) == 2

    logs = daemon.cli("logs", "one", "--lines", "1")
    assert logs.returncode == 0 and "fake worker one started" in logs.stdout

    stopped = daemon.cli("stop", "one", "--timeout", "2000")
    assert stopped.stdout == "stopped one (exit code 0)\n"
    assert json.loads(daemon.cli("stop", "second", "--json").stdout)["state"] == "stopped"
    assert daemon.cli("list", "--json").stdout.strip() == "[]"
    assert daemon.cli("list").stdout == "no strategies deployed (qkt deploy FILE)\n"


def test_user_errors_are_one_line_and_exit_1(daemon: RunningDaemon, files: Path) -> None:
    missing = files / "missing.qkt"
    one_line_error(daemon.cli("deploy", str(missing)), f"no such file: {missing}")
    broken = str(files / "broken.qkt")
    result = daemon.cli("deploy", broken)
    # Every DSL error with its line and caret, then the count: what `qkt check` prints.
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == qkt("check", broken).stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{broken}:4:48: ") and lines[2] == " " * 47 + "^"
    assert lines[3].startswith(f"{broken}:5:10: unknown alias 'eth'")
    assert lines[-1] == "2 errors"
    for name in ("has space", "a/b", ".."):
        result = daemon.cli("deploy", str(files / "one.qkt"), "--as", name)
        assert result.returncode == 1 and result.stderr.startswith("qkt: error: invalid strategy")
    one_line_error(
        daemon.cli("stop", "ghost"), "no strategy named 'ghost' is deployed (see `qkt list`)"
    )
    one_line_error(
        daemon.cli("logs", "ghost"), "no strategy named 'ghost' is deployed (see `qkt list`)"
    )
    one_line_error(
        daemon.cli("status", "ghost"), "no strategy named 'ghost' is deployed (see `qkt list`)"
    )
    result = daemon.cli("deploy", str(files / "one.qkt"), "--speed", "3")
    assert result.returncode == 1 and "--speed 10" in result.stderr
    daemon.cli("deploy", str(files / "one.qkt"), "--as", "dup")
    result = daemon.cli("deploy", str(files / "one.qkt"), "--as", "dup")
    assert result.returncode == 1 and "stop it first" in result.stderr
    daemon.cli("stop", "dup")


def test_usage_errors_exit_2(daemon: RunningDaemon) -> None:
    result = daemon.cli("stop", "x", "--timeout", "soon")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_daemon_status(daemon: RunningDaemon) -> None:
    report = json.loads(daemon.cli("daemon", "status", "--json").stdout)
    assert report["pid"] == daemon.proc.pid
    assert report["state_dir"] == daemon.root
    assert isinstance(report["hub_keys"], list)
    human = daemon.cli("daemon", "status").stdout
    assert f"pid {daemon.proc.pid}" in human and daemon.root in human


def test_state_dir_can_come_first_or_from_the_environment(daemon: RunningDaemon) -> None:
    first = qkt("--state-dir", daemon.root, "list", "--json")
    assert first.returncode == 0 and json.loads(first.stdout) == []
    from_env = subprocess.run(
        [PYTHON, "-m", "qkt", "daemon", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(QKT_STATE_DIR=daemon.root),
    )
    assert json.loads(from_env.stdout)["pid"] == daemon.proc.pid


def test_logs_follow_streams_until_ctrl_c(daemon: RunningDaemon, files: Path) -> None:
    daemon.cli("deploy", str(files / "one.qkt"), "--as", "chatty")
    with subprocess.Popen(
        [PYTHON, "-m", "qkt", "logs", "chatty", "-f", "--state-dir", daemon.root],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    ) as follower:
        try:
            out = follower.stdout
            assert out is not None and follower.stderr is not None
            assert "fake worker chatty started" in out.readline()
            daemon.post("/stop/chatty", params={"flatten": "true"})  # the worker logs its stop
            wait_until(lambda: "stopping" in out.readline(), timeout=20, what="a followed line")
            follower.send_signal(signal.SIGINT)
            assert follower.wait(timeout=20) == 0
            assert follower.stderr.read() == ""
        finally:
            if follower.poll() is None:
                follower.kill()


def test_no_daemon_and_stale_port_are_one_line_errors(tmp_path: Path) -> None:
    root = tmp_path / "none"
    for args in (
        ["list"],
        ["status"],
        ["logs", "x"],
        ["stop", "x"],
        ["daemon", "stop"],
        ["daemon", "status"],
        ["deploy", "x.qkt"],
    ):
        result = qkt(*args, "--state-dir", str(root))
        assert result.returncode == 1, args
        assert result.stderr.startswith("qkt: error: no daemon running (no ")
        assert result.stderr.count("\n") == 1
    root.mkdir()
    (root / "control.port").write_text("1\n")
    result = qkt("list", "--state-dir", str(root))
    assert result.returncode == 1
    assert result.stderr.startswith("qkt: error: no daemon running (nothing answers on port 1")


def test_daemon_stop_stops_everything(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "s") as daemon:
        strategy(tmp_path, "w1")
        pid = json.loads(daemon.cli("deploy", str(tmp_path / "w1.qkt"), "--json").stdout)["pid"]
        result = daemon.cli("daemon", "stop")
        assert result.returncode == 0 and result.stdout.startswith("daemon stopped")
        assert daemon.proc.wait(timeout=10) == 0
        assert not daemon.state.control_port.exists()
        wait_until(lambda: not _alive(pid), timeout=5, what="the worker to be gone")


def _alive(pid: int) -> bool:
    from tests.helpers import pid_alive

    return pid_alive(pid)
