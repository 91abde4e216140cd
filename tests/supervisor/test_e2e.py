"""The seed's flow end to end with the real worker: two strategies share one SIM key."""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from qkt.osproc import parent_pid_of
from tests.helpers import pid_alive, wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon

TRADER = """\
-- Flips in and out on every candle, so that trades show within seconds.
STRATEGY {name} VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN POSITION.btc > 0 THEN CLOSE btc
"""
KEY = "SIM:BTCUSDT:1s"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    for name in ("alpha", "beta"):
        (root / f"{name}.qkt").write_text(TRADER.format(name=name))
    return root


@pytest.fixture(scope="module")
def daemon(folder: Path) -> Iterator[RunningDaemon]:
    with running_daemon(folder / "s", "--speed", "20", worker=REAL_WORKER) as running:
        yield running


def hub_keys(daemon: RunningDaemon) -> dict[str, int]:
    return {k["key"]: k["subscribers"] for k in daemon.get("/hub").json()}


def _log_with_a_fill(path: Path) -> str:
    """The log once it has a FILL line (a candle's lines come a second after it), else ""."""
    log = path.read_text()
    return log if "FILL" in log else ""


def test_the_seed_flow(daemon: RunningDaemon, folder: Path) -> None:
    for name in ("alpha", "beta"):
        result = daemon.cli("deploy", str(folder / f"{name}.qkt"))
        assert result.returncode == 0, result.stderr

    entries = json.loads(daemon.cli("list", "--json").stdout)
    assert [e["name"] for e in entries] == ["alpha", "beta"]
    assert all(e["state"] == "running" for e in entries)
    pids = [e["pid"] for e in entries]
    ports = [e["port"] for e in entries]
    assert len(set(pids)) == 2 and len(set(ports)) == 2
    assert [parent_pid_of(pid) for pid in pids] == [daemon.proc.pid] * 2
    daemon.seen_pids.update(pids)

    for entry in entries:  # each worker's own status port answers directly
        status = daemon.worker_get(entry["port"], "/status").json()
        assert status["name"] == entry["name"] and status["pid"] == entry["pid"]
        assert status["keys"] == [KEY]
    assert hub_keys(daemon) == {KEY: 2}

    wait_until(
        lambda: all(e["trades"] for e in daemon.entries().values()),
        timeout=30,
        what="both strategies to trade",
    )
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        log_file = daemon.state.logs_dir / f"{name}.log"
        log = wait_until(functools.partial(_log_with_a_fill, log_file), what=f"FILL in {log_file}")
        assert f"worker {name} starting" in log
        assert f"worker {other}" not in log and str(folder / f"{other}.qkt") not in log

    tail = daemon.cli("logs", "alpha", "--lines", "5")
    assert tail.returncode == 0 and len(tail.stdout.splitlines()) == 5

    stopped = daemon.cli("stop", "alpha")
    assert stopped.stdout == "stopped alpha (exit code 0)\n"
    assert not pid_alive(pids[0])
    assert hub_keys(daemon) == {KEY: 1}
    assert [e["name"] for e in daemon.get("/list").json()] == ["beta"]


def test_kill_9_of_a_real_worker_restarts_it(daemon: RunningDaemon, folder: Path) -> None:
    entry = daemon.post("/deploy", json={"file": str(folder / "alpha.qkt"), "name": "gamma"})
    assert entry.json()["trades"] == 0  # from its first beat, not "?" until the next look
    pid = entry.json()["pid"]
    daemon.seen_pids.add(pid)
    os.kill(pid, signal.SIGKILL)
    again = wait_until(
        lambda: (e := daemon.entries()["gamma"])["state"] == "running" and e["restarts"] == 1 and e,
        timeout=30,
        what="gamma restarted",
    )
    assert again["pid"] != pid and again["exit_code"] == -9
    status = daemon.get("/status/gamma").json()
    assert status["pid"] == again["pid"] and status["restarts"] == 1
    # Through the worker's own POST /stop (the daemon's token), which flattens first.
    assert daemon.post("/stop/gamma", params={"flatten": "true"}).json()["exit_code"] == 0


def test_daemon_stop_ends_every_worker(daemon: RunningDaemon) -> None:
    pids = [e["pid"] for e in daemon.entries().values()]
    assert pids
    result = daemon.cli("daemon", "stop")
    assert result.returncode == 0, result.stderr
    assert daemon.proc.wait(timeout=30) == 0
    assert not daemon.state.control_port.exists()
    for pid in pids:
        assert not pid_alive(pid)
    saved = json.loads(daemon.state.deployments.read_text())
    assert [d["name"] for d in saved["deployments"]] == ["beta"]


def test_load_dir_and_redeploy_after_a_restart(tmp_path: Path) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    for name in ("b_second", "a_first"):
        (strategies / f"{name}.qkt").write_text(TRADER.format(name=name))
    (strategies / "c_broken.qkt").write_text("STRATEGY broken VERSION 1\nRULES\n  WHEN\n")
    (strategies / "notes.txt").write_text("not a strategy")
    # Fixed worker ports below the kernel's ephemeral range (32768-60999 by default): a port
    # in it may be any test's outgoing connection at that moment, which the daemon would then skip.
    args = ("--load-dir", str(strategies), "--worker-ports", "29700-29720")
    with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
        wait_until(
            lambda: [e["state"] for e in daemon.entries().values()] == ["running"] * 2,
            timeout=30,
            what="the load dir",
        )
        entries = daemon.entries()
        assert sorted(entries) == ["a_first", "b_second"]
        assert all(29700 <= e["port"] <= 29720 for e in entries.values())
        daemon.post("/deploy", json={"file": str(strategies / "a_first.qkt"), "name": "extra"})
        assert daemon.stop() == 0
        output = daemon.output()
    lines = output.splitlines()
    deployed = [line.split()[1] for line in lines if line.startswith("deployed ")]
    assert sorted(deployed) == ["a_first", "b_second"]
    skipped = [line for line in lines if line.startswith("skipped c_broken")]
    assert len(skipped) == 1 and "c_broken.qkt:" in skipped[0]

    # The next start redeploys what was running, including what was deployed by hand.
    with running_daemon(tmp_path / "s", worker=REAL_WORKER) as daemon:
        wait_until(
            lambda: [e["state"] for e in daemon.entries().values()] == ["running"] * 3,
            timeout=30,
            what="the redeploys",
        )
        assert sorted(daemon.entries()) == ["a_first", "b_second", "extra"]


def test_a_strategy_keeps_its_port_and_a_stopped_one_stays_stopped(tmp_path: Path) -> None:
    strategies = tmp_path / "strategies"  # the load dir holds only `loser`
    strategies.mkdir()
    (strategies / "loser.qkt").write_text(TRADER.format(name="loser"))
    keeper = tmp_path / "keeper.qkt"
    keeper.write_text(TRADER.format(name="keeper"))
    args = ("--load-dir", str(strategies), "--worker-ports", "29730-29750")
    with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
        daemon.wait_state("loser", "running", timeout=30)
        assert daemon.cli("deploy", str(keeper)).returncode == 0
        assert [daemon.entries()[n]["port"] for n in ("loser", "keeper")] == [29730, 29731]
        assert daemon.cli("stop", "loser").returncode == 0
        assert daemon.stop() == 0

    with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
        daemon.wait_state("keeper", "running", timeout=30)
        # Its address survives the restart, although a lower port of the range is free now.
        assert daemon.entries()["keeper"]["port"] == 29731
        assert "loser" not in daemon.entries()  # stopped by the user: not brought back
        deployed = daemon.cli("deploy", str(strategies / "loser.qkt"))
        assert deployed.returncode == 0, deployed.stderr
        assert daemon.stop() == 0
        output = daemon.output()
    assert "skipped loser.qkt: loser was stopped with `qkt stop`" in output

    with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
        # Deployed again by hand, it is part of the fleet again.
        daemon.wait_state("loser", "running", timeout=30)
        daemon.wait_state("keeper", "running", timeout=30)
        assert daemon.stop() == 0
