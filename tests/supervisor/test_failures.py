"""The failure model with real daemons and the fake worker: crashes, hangs, kills, refusals."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from qkt.osproc import parent_pid_of
from tests.helpers import pid_alive, wait_until
from tests.supervisor.daemons import RunningDaemon, running_daemon, strategy

FAST_POLICY = """\
[restart]
attempts = 2
window_s = 60
backoff_s = 0.1
backoff_max_s = 0.2

[workers]
hang_timeout_s = 1.5
ready_timeout_s = 4
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> RunningDaemon:  # type: ignore[misc]
    root = tmp_path_factory.mktemp("fail")
    config = root / "qkt.toml"
    config.write_text(FAST_POLICY)
    with running_daemon(root / "s", "--config", str(config)) as running:
        yield running


def deploy(daemon: RunningDaemon, path: Path) -> dict[str, object]:
    response = daemon.post("/deploy", json={"file": str(path)})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_kill_9_of_a_worker_is_a_crash_and_it_is_restarted(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    first = deploy(daemon, strategy(tmp_path, "victim"))
    pid = first["pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)

    def restarted() -> dict[str, object] | None:
        entry = daemon.entries()["victim"]
        ok = entry["state"] == "running" and entry["restarts"] == 1 and entry["pid"] != pid
        return entry if ok else None

    entry = wait_until(restarted, timeout=20, what="the restart")
    assert entry["exit_code"] == -signal.SIGKILL
    assert entry["error"] == "killed by SIGKILL"
    assert not pid_alive(pid)
    status = daemon.get("/status/victim").json()
    assert status["state"] == "running" and status["restarts"] == 1
    assert daemon.post("/stop/victim").status_code == 200


def test_a_worker_that_keeps_crashing_is_given_up_and_says_so(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    deploy(daemon, strategy(tmp_path, "flaky", "crash-after 0.3", symbol="FLAKYUSDT"))
    entry = wait_until(
        lambda: (e := daemon.entries()["flaky"])["error"] and "not restarting" in e["error"] and e,
        timeout=30,
        what="the restart policy to give up",
    )
    assert entry["state"] == "failed"  # given up: not restarted, until stopped
    assert entry["restarts"] == 2  # attempts = 2
    assert entry["exit_code"] == 3 and entry["pid"] is None
    status = daemon.get("/status/flaky").json()
    assert status["gave_up"] is True
    assert any("crashing as told" in line for line in status["last_log"])
    # Given up: its hub key is released, nothing feeds a strategy that does not run.
    assert "SIM:FLAKYUSDT:1s" not in {k["key"] for k in daemon.get("/hub").json()}
    stopped = daemon.post("/stop/flaky").json()
    assert stopped == {"name": "flaky", "state": "stopped", "exit_code": 3}
    assert "flaky" not in daemon.entries()


def test_a_hung_worker_is_killed_and_restarted(daemon: RunningDaemon, tmp_path: Path) -> None:
    first = deploy(daemon, strategy(tmp_path, "hangs", "hang-after 0.5"))
    entry = wait_until(
        lambda: (e := daemon.entries()["hangs"])["restarts"] >= 1 and e,
        timeout=30,
        what="the hung worker to be restarted",
    )
    assert entry["pid"] != first["pid"]
    assert not pid_alive(int(first["pid"]))  # type: ignore[call-overload]
    assert daemon.post("/stop/hangs", params={"timeout": 200}).status_code == 200


def test_a_worker_that_never_becomes_ready_leaves_nothing(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    response = daemon.post(
        "/deploy", json={"file": str(strategy(tmp_path, "mute", "never-ready", symbol="MUTEUSDT"))}
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "worker_failed"
    assert "did not answer /health within 4 s" in error["message"]
    assert "mute" not in daemon.entries()
    assert "SIM:MUTEUSDT:1s" not in {k["key"] for k in daemon.get("/hub").json()}


def test_a_worker_that_exits_at_start_reports_its_log(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    response = daemon.post(
        "/deploy", json={"file": str(strategy(tmp_path, "dud", "exit-at-start 7"))}
    )
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert message.startswith("dud exited with code 7 before it was ready")
    assert "exiting at start" in message
    assert "dud" not in daemon.entries()


def test_a_worker_that_ignores_sigterm_is_killed_after_the_timeout(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    entry = deploy(daemon, strategy(tmp_path, "stubborn", "ignore-sigterm"))
    response = daemon.post("/stop/stubborn", params={"timeout": 300})
    assert response.json() == {"name": "stubborn", "state": "stopped", "exit_code": -9}
    assert not pid_alive(int(entry["pid"]))  # type: ignore[call-overload]


def test_flatten_asks_the_worker_to_stop_itself(daemon: RunningDaemon, tmp_path: Path) -> None:
    deploy(daemon, strategy(tmp_path, "flat"))
    response = daemon.post("/stop/flat", params={"flatten": "true"})
    assert response.json()["exit_code"] == 0
    log = (daemon.state.logs_dir / "flat.log").read_text()
    assert "stopping (flatten=True)" in log


def test_workers_are_children_of_the_daemon(daemon: RunningDaemon, tmp_path: Path) -> None:
    entry = deploy(daemon, strategy(tmp_path, "child"))
    assert parent_pid_of(int(entry["pid"])) == daemon.proc.pid  # type: ignore[call-overload]
    assert os.getsid(int(entry["pid"])) == entry["pid"]  # type: ignore[call-overload]
    assert daemon.post("/stop/child").status_code == 200


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_sigkill_of_the_daemon_leaves_no_worker_behind(tmp_path: Path, spawn: str) -> None:
    with running_daemon(tmp_path / "s", "--spawn", spawn) as daemon:
        pids = [deploy(daemon, strategy(tmp_path, n))["pid"] for n in ("one", "two")]
        assert daemon.get("/health").json()["spawn"] == spawn
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        for pid in pids:
            assert isinstance(pid, int)
            wait_until(lambda pid=pid: not pid_alive(pid), timeout=10, what=f"pid {pid} to exit")


def test_sigterm_stops_everything_and_leaves_only_the_kept_state(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "s") as daemon:
        pids = [deploy(daemon, strategy(tmp_path, n))["pid"] for n in ("one", "two")]
        assert daemon.stop(signal.SIGTERM) == 0
        for pid in pids:
            assert not pid_alive(int(pid))  # type: ignore[call-overload]
        root = daemon.state.root
        assert sorted(p.name for p in root.iterdir()) == [
            "daemon.lock",
            "deployments.json",
            "logs",
            "sim-clock.json",  # kept: the simulated market continues after a restart
            "strategies",
        ]
        output = daemon.output()
        assert "shutting down (SIGTERM)" in output and "daemon stopped" in output


def test_a_second_daemon_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "s") as first:
        with running_daemon(tmp_path / "s", ready=False) as second:
            assert second.proc.wait(timeout=30) == 1
            output = second.output()
        assert output.strip() == (
            f"qkt: error: a daemon is already running for {first.root} (pid {first.proc.pid})"
        )
        assert first.get("/health").status_code == 200


def test_a_worker_whose_status_fails_still_shows_in_status_all(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    deploy(daemon, strategy(tmp_path, "sulky", "broken-status"))
    deploy(daemon, strategy(tmp_path, "fine"))
    try:
        found = {s["name"]: s for s in daemon.get("/status").json()}
        assert found["sulky"]["state"] == "running"
        assert "sulky did not answer" in found["sulky"]["error"]
        assert found["fine"]["fake"] is True and found["fine"]["state"] == "running"
        assert "did not answer" in daemon.get("/status/sulky").json()["error"]
        assert daemon.entries()["sulky"]["trades"] is None  # unknown, not made up
    finally:
        daemon.post("/stop/sulky")
        daemon.post("/stop/fine")


def test_a_restart_that_fails_unexpectedly_ends_in_backoff_or_failed_with_the_reason(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    """Issue 11 #3: an OSError during a restart (here its folder replaced by a file) used to
    leave the strategy `restarting` forever."""
    first = deploy(daemon, strategy(tmp_path, "blocked", symbol="BLOCKUSDT"))
    folder = daemon.state.strategy_dir("blocked")
    folder.rename(folder.with_name("blocked.moved"))
    folder.write_text("not a folder")
    os.kill(int(first["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    try:
        entry = wait_until(
            lambda: (e := daemon.entries()["blocked"])["state"] == "failed" and e,
            timeout=30,
            what="the restart to give up",
        )
        assert "could not restart: File exists" in entry["error"]
        assert entry["pid"] is None
    finally:
        folder.unlink()
        folder.with_name("blocked.moved").rename(folder)
        assert daemon.post("/stop/blocked").status_code == 200
