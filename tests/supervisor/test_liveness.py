"""Liveness a busy box cannot fool: the watchdog's rules and the restart brake, with an injected
clock and load (no waiting), and the heartbeat file between two real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qkt.supervisor.brake import BrakeSettings, RestartBrake
from qkt.supervisor.watchdog import Watchdog
from qkt.worker.heartbeat import HeartbeatReader, HeartbeatWriter

NOW = 1000.0


def dog(load: float = 0.0) -> Watchdog:
    return Watchdog(10.0, load=lambda: load)


def test_a_worker_silent_past_the_deadline_is_hung_and_a_late_one_is_not() -> None:
    beats = {"quiet": NOW - 10.5, "late": NOW - 9.5, "fine": NOW - 0.5, "ok": NOW - 1, "x": NOW}
    verdict = dog().judge(beats, NOW)
    assert verdict.hung == ("quiet",)
    assert verdict.late == ("quiet",)
    assert not verdict.busy_box


def test_the_deadline_stretches_with_the_load_of_the_box() -> None:
    beats = {"a": NOW - 15, "b": NOW, "c": NOW, "d": NOW, "e": NOW, "f": NOW}
    assert dog(load=1.0).judge(beats, NOW).hung == ("a",)
    # Two runnable tasks per core: twice the time before anyone is called hung.
    stretched = dog(load=2.0).judge(beats, NOW)
    assert stretched.hung == () and stretched.deadline_s == 20.0


def test_many_late_at_once_is_the_box_not_the_workers() -> None:
    watchdog = dog()
    beats = {f"w{i}": NOW - (30 if i < 3 else 1) for i in range(10)}
    verdict = watchdog.judge(beats, NOW)
    assert verdict.busy_box and verdict.hung == () and len(verdict.late) == 3
    assert watchdog.busy_since == NOW
    # A fifth of a large population late at once is also the box.
    big = {f"w{i}": NOW - (30 if i < 20 else 1) for i in range(100)}
    assert dog().judge(big, NOW).hung == ()
    # Below the quorum, the late ones are hung; the episode ends once beats are on time.
    fewer = {f"w{i}": NOW - (30 if i < 2 else 1) for i in range(10)}
    assert watchdog.judge(fewer, NOW + 1).hung == ("w0", "w1")
    assert watchdog.busy_since is None


def test_a_single_worker_that_stops_beating_is_hung() -> None:
    assert dog().judge({"only": NOW - 11}, NOW).hung == ("only",)


def test_the_brake_pauses_restarts_after_many_crashes_and_resumes_after_a_quiet_spell() -> None:
    brake = RestartBrake(BrakeSettings(crashes=3, window_s=60, pause_s=30))
    brake.crashed(NOW)
    brake.crashed(NOW + 1)
    assert brake.allows(NOW + 2) and brake.reason is None
    brake.crashed(NOW + 2)
    assert not brake.allows(NOW + 3)
    assert brake.reason is not None and "3 workers crashed within 60 s" in brake.reason
    brake.crashed(NOW + 20)  # a crash during the pause extends it
    assert not brake.allows(NOW + 45)
    assert brake.allows(NOW + 51)
    assert brake.reason is None
    brake.crashed(NOW + 52)  # the count starts again from zero
    assert brake.allows(NOW + 53)


def test_crashes_spread_wider_than_the_window_do_not_pull_the_brake() -> None:
    brake = RestartBrake(BrakeSettings(crashes=3, window_s=10, pause_s=30))
    for i in range(10):
        brake.crashed(NOW + i * 6)
    assert brake.allows(NOW + 60) and brake.reason is None


WRITER = """
import sys, time
from pathlib import Path
from qkt.worker.heartbeat import HeartbeatWriter
HeartbeatWriter(Path(sys.argv[1])).beat(trades=7, now=float(sys.argv[2]))
"""


def test_a_beat_written_by_another_process_is_read_through_the_shared_map(
    tmp_path: Path,
) -> None:
    path = tmp_path / "heartbeat"
    first = HeartbeatWriter(path)
    first.beat(None, now=5.0)
    reader = HeartbeatReader.open(path)
    assert reader is not None
    beat = reader.read()
    assert (beat.at, beat.pid, beat.trades) == (5.0, os.getpid(), None)
    # The next process of the strategy writes into the same file: the reader sees it.
    child = subprocess.run([sys.executable, "-c", WRITER, str(path), "42.5"], check=True)
    assert child.returncode == 0
    beat = reader.read()
    assert beat.at == 42.5 and beat.trades == 7 and beat.pid != os.getpid()
    assert os.stat(path).st_mode & 0o777 == 0o600
    reader.close()
    first.close()


def test_no_heartbeat_file_means_no_reader(tmp_path: Path) -> None:
    assert HeartbeatReader.open(tmp_path / "missing") is None
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        HeartbeatWriter(link)  # never written through a planted symlink
    assert not (tmp_path / "elsewhere").exists()


def test_the_liveness_settings_and_the_old_ping_keys_load(tmp_path: Path) -> None:
    from qkt.paths import StateDir
    from qkt.supervisor.config import build_config

    config = build_config(
        StateDir(tmp_path),
        {
            "workers.hang_timeout_s": 5,
            "daemon.spawn_concurrency": 3,
            "restart.brake_crashes": 4,
            "restart.brake_pause_s": 30,
            "workers.ping_interval_s": 2,  # an older qkt's file: accepted, ignored
            "workers.ping_failures": 3,
        },
    )
    assert config.workers.hang_timeout_s == 5.0 and config.spawn_concurrency == 3
    assert config.brake == BrakeSettings(crashes=4, window_s=60.0, pause_s=30.0)
