"""Through a real daemon and a real worker: a SIM strategy is warm right after its deploy."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon

EMA_50 = """\
STRATEGY warmed VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1m
RULES
    WHEN btc.close > EMA(btc.close, 50) AND POSITION.btc == 0 THEN BUY btc SIZING 0.01
"""


def test_a_sim_ema_50_strategy_is_warm_before_its_first_live_candle_and_after_kill_9(
    tmp_path: Path,
) -> None:
    source = tmp_path / "warmed.qkt"
    source.write_text(EMA_50)
    root = tmp_path / "s"
    with running_daemon(root, worker=REAL_WORKER) as daemon:  # speed 1: 1m candles are slow
        deployed = daemon.cli("deploy", str(source))
        assert deployed.returncode == 0, deployed.stderr
        _assert_warm_from_history(daemon)
        (line,) = daemon.get("/hub").json()
        assert line["key"] == "SIM:BTCUSDT:1m" and line["seq"] >= 50
        daemon.stop(signal.SIGKILL)
    with running_daemon(root, worker=REAL_WORKER) as daemon:  # the deployment comes back
        _assert_warm_from_history(daemon)


def _assert_warm_from_history(daemon: RunningDaemon) -> None:
    status: dict[str, object] = {}

    def warm() -> bool:
        reply = daemon.get("/status/warmed")
        if reply.status_code != 200:
            return False
        status.update(reply.json())
        return status.get("warm") is True

    wait_until(warm, timeout=60, what="warm: true")
    assert int(str(status["warmup_candles"])) >= 50
    assert status["candles"] in ({}, {"SIM:BTCUSDT:1m": 0})  # warmed by history alone
