"""Risk limits end to end (issue 13): each per-strategy limit and each daemon-wide limit driven
past by a real strategy in a real worker under a real daemon, on the SIM market sped up; the
simulated clock starts minutes before 00:00 UTC (the daemon continues `sim-clock.json`), so the
daily limits are seen lifting at midnight without waiting for one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
import requests

from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon
from tests.supervisor.test_halt_e2e import cli

pytestmark = pytest.mark.slow

FLIP = """\
STRATEGY {name} VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN POSITION.btc > 0 THEN CLOSE btc
"""
BUYER = """\
STRATEGY {name} VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN btc.close > 0 THEN BUY btc SIZING 0.01
"""
MIDNIGHT_MS: Final = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
SPEED: Final = 20
# Every fill pays 1 %: about 6.5 on 0.01 BTC, so a flipping strategy loses steadily.
EXPENSIVE: Final = {"fee_bps": "100", "max_orders_per_minute": "off"}


def start_market_at(root: Path, market_ms: int) -> None:
    """Make the daemon's simulated market continue from `market_ms` (now)."""
    root.mkdir(parents=True, exist_ok=True)
    body = {"market_ms": market_ms, "wall_ms": time.time_ns() // 10**6, "speed": SPEED}
    (root / "sim-clock.json").write_bytes(orjson.dumps(body))


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    for name, text in (("flip", FLIP), ("buyer", BUYER)):
        (tmp_path / f"{name}.qkt").write_text(text.format(name=name))
    return tmp_path


def deploy(daemon: RunningDaemon, file: Path, name: str, **options: str) -> None:
    answer = daemon.post("/deploy", json={"file": str(file), "name": name, **options})
    assert answer.status_code == 201, answer.text


def worker(daemon: RunningDaemon, name: str, path: str) -> requests.Response:
    port = daemon.entries()[name]["port"]
    return daemon.worker_get(port, path)


def halted_by(daemon: RunningDaemon, name: str, kind: str) -> dict[str, Any]:
    """Wait for `name`'s halt of `kind` in `qkt list`'s record; the halt."""

    def check() -> dict[str, Any] | None:
        halt = daemon.entries()[name]["halt"]
        return halt if halt is not None and halt["kind"] == kind else None

    found: dict[str, Any] = wait_until(check, timeout=60, what=f"{name} halted by {kind}")
    return found


def check_breach(daemon: RunningDaemon, name: str, kind: str, by: str = "risk") -> dict[str, Any]:
    """The halt, its reason, its event and its metric."""
    halt = halted_by(daemon, name, kind)
    assert halt["by"] == by and f"{kind} " in halt["reason"] and "breached" in halt["reason"]
    assert f"{kind} by {by}" in cli(daemon, "status", name).stdout
    # The event: in the strategy's log (the ring of /events may have moved on since), where a
    # candle's lines arrive a second after it.
    lines = (
        f"RISK halt {kind} by {by}: {halt['reason']}",
        f"RISK kill {kind} by {by}: {halt['reason']}",
    )
    wait_until(
        lambda: any(line in daemon.state.log_file(name).read_text() for line in lines),
        timeout=10,
        what=f"{lines[0]!r} in {name}'s log",
    )
    metrics = worker(daemon, name, "/metrics").text
    assert f'qkt_halts_total{{reason="{kind}",strategy="{name}"}}' in metrics, metrics
    return halt


def check_lifts_at_midnight(daemon: RunningDaemon, name: str) -> None:
    """A `lift` event (in the log: the ring may have moved on), then entries after 00:00 UTC
    of the market."""
    wait_until(
        lambda: "RISK lift" in daemon.state.log_file(name).read_text(),
        timeout=90,
        what=f"{name}'s daily halt to lift at midnight",
    )
    wait_until(
        lambda: any(
            fill["side"] == "BUY" and fill["ts"] >= MIDNIGHT_MS
            for fill in worker(daemon, name, "/trades?limit=1000").json()["trades"]
        ),
        timeout=30,
        what=f"{name} to trade after midnight",
    )


@pytest.fixture()
def limits_daemon(folder: Path) -> Iterator[RunningDaemon]:
    root = folder / "s"
    start_market_at(root, MIDNIGHT_MS - 7 * 60_000)
    with running_daemon(root, "--speed", str(SPEED), worker=REAL_WORKER) as daemon:
        yield daemon


def test_each_strategy_limit_halts_and_the_daily_one_lifts_at_midnight(
    limits_daemon: RunningDaemon, folder: Path
) -> None:
    daemon, flip, buyer = limits_daemon, folder / "flip.qkt", folder / "buyer.qkt"
    deploy(daemon, flip, "daily", **EXPENSIVE, max_daily_loss="40")
    deploy(daemon, flip, "drawdown", **EXPENSIVE, max_drawdown_pct="0.4")
    deploy(daemon, flip, "streak", **EXPENSIVE, max_loss_streak="3")
    deploy(daemon, flip, "rate", max_orders_per_minute="10")
    deploy(daemon, buyer, "notional", max_position_notional="1000")

    daily = check_breach(daemon, "daily", "max_daily_loss")
    assert daily["since_ms"] < MIDNIGHT_MS, "the market reached midnight before the breach"
    drawdown = check_breach(daemon, "drawdown", "max_drawdown_pct")
    streak = check_breach(daemon, "streak", "max_loss_streak")
    assert "3 losing trades in a row" in streak["reason"]
    rate = check_breach(daemon, "rate", "max_orders_per_minute")
    assert "11 orders in 60 s" in rate["reason"]
    notional = check_breach(daemon, "notional", "max_position_notional")
    rejected = [
        e
        for e in worker(daemon, "notional", "/logs?limit=1000").json()["events"]
        if e["type"] == "order_rejected"
    ]
    assert rejected and "max_position_notional" in rejected[0]["reason"]
    positions = worker(daemon, "notional", "/status").json()["positions"]
    assert [p["qty"] for p in positions] == ["0.01"], "the order was clipped, not rejected"

    check_lifts_at_midnight(daemon, "daily")
    for name, halt in (("drawdown", drawdown), ("streak", streak), ("notional", notional)):
        assert daemon.entries()[name]["halt"] == halt, f"{name}'s halt must wait for resume"
    resumed = daemon.post("/resume/notional").json()["strategies"]
    assert resumed[0]["halted"] is False and resumed[0]["halt"] is None
    # It buys again at once, and the next buy breaches the limit again: a fresh halt.
    again = wait_until(
        lambda: (
            (h := daemon.entries()["notional"]["halt"]) and h["since_ms"] > notional["since_ms"]
        ),
        timeout=30,
        what="a fresh breach after the resume",
    )
    assert again


def test_daemon_wide_limits_halt_every_strategy(folder: Path) -> None:
    flip = folder / "flip.qkt"
    root = folder / "daily"
    start_market_at(root, MIDNIGHT_MS - 5 * 60_000)
    config = folder / "daily.toml"
    config.write_text("[risk]\nmax_daily_loss = 60\ncheck_interval_s = 0.2\n")
    args = ("--speed", str(SPEED), "--config", str(config))
    with running_daemon(root, *args, worker=REAL_WORKER) as daemon:
        for name in ("one", "two"):
            deploy(daemon, flip, name, **EXPENSIVE)
        for name in ("one", "two"):
            halt = check_breach(daemon, name, "portfolio_daily_loss", by="daemon")
            assert "every strategy together lost" in halt["reason"]
        for name in ("one", "two"):
            check_lifts_at_midnight(daemon, name)

    root = folder / "drawdown"
    config = folder / "drawdown.toml"
    config.write_text("[risk]\nmax_drawdown_pct = '0.3'\nflatten = true\ncheck_interval_s = 0.2\n")
    args = ("--speed", str(SPEED), "--config", str(config))
    with running_daemon(root, *args, worker=REAL_WORKER) as daemon:
        for name in ("one", "two"):
            deploy(daemon, flip, name, **EXPENSIVE)
        for name in ("one", "two"):
            halt = halted_by(daemon, name, "operator")  # a kill: flatten = true
            assert halt["killed"] and halt["by"] == "daemon"
            assert "portfolio_drawdown_pct 0.3 breached" in halt["reason"]
            assert worker(daemon, name, "/status").json()["positions"] == []
            metrics = worker(daemon, name, "/metrics").text
            assert f'qkt_halts_total{{reason="operator",strategy="{name}"}}' in metrics
