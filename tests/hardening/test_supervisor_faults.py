"""Issue 11 #4, #6, #7 and the stop while starting: the daemon's own faults, each reproduced."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from qkt.paths import StateDir
from qkt.supervisor import registry as registry_module
from qkt.supervisor.config import DaemonConfig
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.registry import Registry
from tests.helpers import pid_alive, wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon, strategy

POLICY = """\
[restart]
attempts = 2
backoff_s = 0.2
backoff_max_s = 0.4

[workers]
ready_timeout_s = 3
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("faults")
    (root / "qkt.toml").write_text(POLICY)
    load = root / "load"
    strategy(load, "late", "exit-at-start 1", symbol="LATEUSDT")  # fails at every start
    args = ("--config", str(root / "qkt.toml"), "--load-dir", str(load))
    with running_daemon(root / "s", *args) as running:
        yield running


def test_a_strategy_that_fails_to_start_at_boot_stays_deployed_and_is_retried(
    daemon: RunningDaemon,
) -> None:
    """#6: it used to be dropped for good ("skipped"), never retried, invisible."""
    entry = wait_until(
        lambda: (e := daemon.entries().get("late")) and e["state"] == "failed" and e,
        timeout=30,
        what="the boot failure to be retried, then given up",
    )
    assert entry["restarts"] == 2 and "exited with code 1 before it was ready" in entry["error"]
    assert "late" in daemon.state.deployments.read_text()  # still deployed, across restarts
    assert daemon.post("/stop/late").status_code == 200


def test_a_stop_that_cannot_be_recorded_stops_nothing_and_says_why(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    """#7: the worker was stopped but deployments.json still listed it (it came back)."""
    pid = daemon.post("/deploy", json={"file": str(strategy(tmp_path, "kept"))}).json()["pid"]
    daemon.state.deployments.unlink()
    daemon.state.deployments.mkdir()  # the rename over it fails, as a full disk would
    (daemon.state.deployments / "x").write_text("")
    try:
        answer = daemon.post("/stop/kept")
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "out_of_resources"
        assert error["message"].startswith("kept was not stopped: the stop could not be recorded")
        assert pid_alive(pid) and daemon.entries()["kept"]["state"] == "running"
    finally:
        (daemon.state.deployments / "x").unlink()
        daemon.state.deployments.rmdir()
    assert daemon.post("/stop/kept").status_code == 200
    assert "kept" in daemon.state.deployments.read_text()  # under `stopped`
    assert not pid_alive(pid)


def test_a_stop_while_starting_cancels_the_start(daemon: RunningDaemon, tmp_path: Path) -> None:
    """Minor: it answered 409 "still starting"."""
    path = strategy(tmp_path, "slow", "never-ready", symbol="SLOWUSDT")
    answers: dict[str, Any] = {}

    def deploy() -> None:
        answers["deploy"] = daemon.post("/deploy", json={"file": str(path)})

    thread = threading.Thread(target=deploy)
    thread.start()
    wait_until(lambda: daemon.entries().get("slow", {}).get("state") == "starting", timeout=10)
    stopped = daemon.post("/stop/slow")
    thread.join(timeout=30)
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    deployed: requests.Response = answers["deploy"]
    assert deployed.status_code == 409
    assert "stopped (qkt stop) while it was starting" in deployed.json()["error"]["message"]
    assert "slow" not in daemon.entries()
    assert "SIM:SLOWUSDT:1s" not in {k["key"] for k in daemon.get("/hub").json()}


def test_compiling_runs_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#4: a big file's compile used to block the loop (no candle, no /health) meanwhile."""
    loop_threads: list[int] = []
    compiled_in: list[int] = []

    def compile_bytes(data: bytes, file: str) -> Any:
        compiled_in.append(threading.get_ident())
        raise LookupError("stop here")

    monkeypatch.setattr(registry_module, "compile_bytes", compile_bytes)
    (tmp_path / "a.qkt").write_text("STRATEGY a VERSION 1\n")
    config = DaemonConfig(state=StateDir(tmp_path / "s"))
    registry = Registry(config, None, None, None, None)  # type: ignore[arg-type]

    async def deploy() -> None:
        loop_threads.append(threading.get_ident())
        with pytest.raises(LookupError):
            await registry.deploy(Deployment.create(str(tmp_path / "a.qkt")))

    asyncio.run(deploy())
    assert compiled_in and compiled_in[0] != loop_threads[0]
    assert "a" not in registry


BUY_ONCE = """\
STRATEGY once VERSION 1
SYMBOLS s = SIM:BTCUSDT EVERY 1m
RULES
    WHEN POSITION.s == 0 THEN BUY s SIZING 0.01
"""


def test_a_crashed_entry_keeps_the_trade_count_it_reached(tmp_path: Path) -> None:
    """Minor of issue 11: crashed entries showed a stale trade count (the one of the last status
    request, often none). The count now comes with the worker's heartbeat, with no status
    request: `GET /list` alone sees the fill, and the crashed entry keeps it."""
    source = tmp_path / "once.qkt"
    source.write_text(BUY_ONCE)
    with running_daemon(tmp_path / "s", "--speed", "600", worker=REAL_WORKER) as daemon:
        assert daemon.cli("deploy", str(source)).returncode == 0
        wait_until(lambda: daemon.entries()["once"]["trades"] == 1, 60, what="the fill in /list")
        pid = daemon.entries()["once"]["pid"]
        os.kill(pid, signal.SIGKILL)
        crashed = wait_until(
            lambda: (e := daemon.entries()["once"])["pid"] != pid and e, 30, what="the crash"
        )
        assert crashed["trades"] == 1
