"""Issue 17's regression: 300 real strategies hold minutes of candle bursts with no restart.

Before the heartbeat watchdog, 300 workers waking on the same candle answered the daemon's
`/health` pings late, were killed as hung, and within four minutes their restarts had grown
into a storm (285 restarting, 580 restarts). Here 300 strategies (fork server, SIM market at
speed 30: every 1m candle closes for all of them at once, every 2 s) are deployed from a load
dir and watched through two minutes of bursts (60 of them): at no look may one be restarted or
anything but `running`. Then the daemon stops them all and nothing is left behind.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any, Final

import pytest

from tests.helpers import pid_alive, wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon

COUNT: Final = 300
HOLD_S: Final = 120.0  # watched through this many seconds of bursts: 60 candles at speed 30
SYMBOLS: Final = 10  # several strategies per hub key, as on a real box
FLIPPER: Final = """\
STRATEGY {name} VERSION 1
SYMBOLS s = SIM:{symbol} EVERY 1m
RULES
    WHEN POSITION.s == 0 THEN BUY s SIZING 0.01
    WHEN POSITION.s > 0 THEN CLOSE s
"""
CONFIG: Final = """\
[workers]
hang_timeout_s = 10
"""


def write_strategies(folder: Path) -> None:
    folder.mkdir()
    for i in range(COUNT):
        name = f"s{i:03d}"
        symbol = f"T{i % SYMBOLS}USDT"
        (folder / f"{name}.qkt").write_text(FLIPPER.format(name=name, symbol=symbol))


def entries(daemon: RunningDaemon) -> list[dict[str, Any]]:
    return list(daemon.entries().values())


@pytest.mark.slow
def test_300_strategies_hold_minutes_of_candle_bursts_without_a_restart(tmp_path: Path) -> None:
    load = tmp_path / "load"
    write_strategies(load)
    config = tmp_path / "qkt.toml"
    config.write_text(CONFIG)
    args = ("--load-dir", str(load), "--speed", "30", "--config", str(config))
    with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
        wait_until(
            lambda: (
                len(found := entries(daemon)) == COUNT
                and all(e["state"] == "running" for e in found)
            ),
            timeout=200,
            interval=1.0,
            what=f"{COUNT} strategies running",
        )
        # Every strategy flips on every candle: 4 trades each means every worker has seen
        # at least 4 bursts of 300 at once.
        wait_until(
            lambda: all((e["trades"] or 0) >= 4 for e in entries(daemon)),
            timeout=90,
            interval=1.0,
            what="every strategy to trade through 4 candle bursts",
        )
        first = {e["name"]: e["trades"] for e in entries(daemon)}
        # Then held: a look every 2 s until HOLD_S are over, or until one finds a strategy
        # restarted or not running (a storm starts with one), whose names end the watch.
        over = time.monotonic() + HOLD_S
        held = wait_until(
            lambda: troubled(entries(daemon)) or time.monotonic() >= over,
            timeout=HOLD_S + 60,
            interval=2.0,
            what=f"{HOLD_S:.0f} s of candle bursts",
        )
        assert held is True, f"restarted or not running during the bursts: {held}"
        found = entries(daemon)
        assert troubled(found) == []
        # They kept trading all along: dozens of bursts more for every one of them.
        assert [e["name"] for e in found if (e["trades"] or 0) < first[e["name"]] + 30] == []
        health = daemon.get("/health").json()
        assert health["restarts_paused"] is None
        pids = {e["pid"] for e in found}
        assert len(pids) == COUNT
        assert daemon.stop(signal.SIGTERM, timeout=120) == 0
        output = daemon.output()
    assert "hung, killed" not in output and "restarting in" not in output
    assert f"stopped {COUNT} strategies" in output
    assert [pid for pid in pids if pid_alive(pid)] == []


def troubled(found: list[dict[str, Any]]) -> list[str]:
    """The strategies of `found` restarted at least once or not `running`."""
    return [e["name"] for e in found if e["restarts"] or e["state"] != "running"]
