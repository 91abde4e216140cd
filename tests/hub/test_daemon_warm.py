"""Through a real daemon and a real worker: a SIM strategy is warm right after its deploy."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, running_daemon

EMA_50 = """\
STRATEGY warmed VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1m
RULES
    WHEN btc.close > EMA(btc.close, 50) AND POSITION.btc == 0 THEN BUY btc SIZING 0.01
"""


def test_a_sim_ema_50_strategy_is_warm_before_its_first_live_candle(tmp_path: Path) -> None:
    source = tmp_path / "warmed.qkt"
    source.write_text(EMA_50)
    with running_daemon(tmp_path / "s", worker=REAL_WORKER) as daemon:  # speed 1: 1m is slow
        deployed = daemon.cli("deploy", str(source))
        assert deployed.returncode == 0, deployed.stderr
        status: dict[str, object] = {}

        def warm() -> bool:
            status.update(daemon.get("/status/warmed").json())
            return status.get("warm") is True

        wait_until(warm, timeout=30, what="warm: true")
        assert int(str(status["warmup_candles"])) >= 50
        assert status["candles"] in ({}, {"SIM:BTCUSDT:1m": 0})  # warmed by history alone
        (line,) = daemon.get("/hub").json()
        assert line["key"] == "SIM:BTCUSDT:1m" and line["seq"] >= 50
