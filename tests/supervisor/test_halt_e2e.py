"""Halt, resume and kill end to end (issue 13): a real daemon, real workers, the SIM market sped
up, driven through the CLI and the control plane."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from qkt.cli.main import main
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon

pytestmark = pytest.mark.slow

# The entry rule is true on every candle; the exit closes a position held for three candles.
# Rule order puts the BUY last, so a position is open after every candle: a halt always finds
# one, and its CLOSE comes within three candles.
ALWAYS = """\
STRATEGY {name} VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN SUM(1) SINCE OPEN >= 3 THEN CLOSE btc
    WHEN btc.close > 0 THEN BUY btc SIZING 0.01
"""
KEY = "SIM:BTCUSDT:1s"
DEPLOY = ("--balance", "1000000", "--max-orders-per-minute", "off")


@pytest.fixture()
def daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    with running_daemon(tmp_path / "s", "--speed", "20", worker=REAL_WORKER) as running:
        yield running


def deploy(daemon: RunningDaemon, folder: Path, name: str, *flags: str) -> dict[str, Any]:
    path = folder / f"{name}.qkt"
    path.write_text(ALWAYS.format(name=name))
    result = daemon.cli("deploy", str(path), *DEPLOY, *flags)
    assert result.returncode == 0, result.stderr
    return daemon.wait_state(name, "running")


def worker(daemon: RunningDaemon, name: str, path: str) -> Any:
    port = daemon.entries()[name]["port"]
    return daemon.worker_get(port, path).json()


def candles(daemon: RunningDaemon, name: str) -> int:
    count: int = worker(daemon, name, "/status")["candles"].get(KEY, 0)
    return count


def fills_after(daemon: RunningDaemon, name: str, ts: int) -> list[dict[str, Any]]:
    found = worker(daemon, name, "/trades?limit=1000")["trades"]
    return [fill for fill in found if fill["ts"] > ts]


def check_halted_for_30_candles(daemon: RunningDaemon, name: str, since_ms: int) -> None:
    """No entry for 30 candles; the position open at the halt was closed by the CLOSE rule."""
    start = candles(daemon, name)
    wait_until(lambda: candles(daemon, name) >= start + 30, timeout=30, what="30 candles")
    after = fills_after(daemon, name, since_ms)
    assert after, (
        since_ms,
        worker(daemon, name, "/status")["positions"],
        worker(daemon, name, "/trades?limit=5")["trades"],
        worker(daemon, name, "/status")["last_candle_ts"],
    )
    assert all(fill["side"] == "SELL" for fill in after), after
    assert worker(daemon, name, "/status")["positions"] == []


def trades_again(daemon: RunningDaemon, name: str, since_ms: int) -> None:
    wait_until(
        lambda: any(f["side"] == "BUY" for f in fills_after(daemon, name, since_ms)),
        timeout=30,
        what=f"{name} to enter again",
    )


def cli(daemon: RunningDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    """`qkt ARGS` in this process (the CLI's own `main`): quicker than a new interpreter."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([*args, "--state-dir", daemon.root])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def test_halt_stops_entries_keeps_exits_and_resume_lifts_it(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    deploy(daemon, tmp_path, "alpha")
    deploy(daemon, tmp_path, "beta")
    wait_until(lambda: worker(daemon, "alpha", "/status")["positions"], what="a position")

    halted = daemon.cli("halt", "alpha", "--reason", "too many trades")
    assert halted.returncode == 0, halted.stderr
    assert halted.stdout.strip() == "halted alpha: too many trades"
    halt = daemon.entries()["alpha"]["halt"]
    assert halt["kind"] == "operator" and halt["by"] == "operator" and not halt["killed"]
    listing = daemon.cli("list").stdout.splitlines()
    assert listing[0].split()[-1] == "REASON"
    assert "halted" in listing[1] and "too many trades" in listing[1] and "running" in listing[2]
    shown = cli(daemon, "status", "alpha").stdout
    assert "halted" in shown and "operator by operator" in shown and "too many trades" in shown
    table = cli(daemon, "status").stdout.splitlines()
    assert table[1].split()[:2] == ["alpha", "halted"] and table[2].split()[:2] == [
        "beta",
        "running",
    ]
    check_halted_for_30_candles(daemon, "alpha", halt["since_ms"])
    assert fills_after(daemon, "beta", halt["since_ms"]), "beta is not halted"
    ring = worker(daemon, "alpha", "/logs?limit=1000")["events"]
    assert any(e["type"] == "risk" and e["action"] == "halt" for e in ring)
    assert any(e["type"] == "order_rejected" and "halted" in e["reason"] for e in ring)

    resumed = daemon.cli("resume", "alpha")
    assert resumed.returncode == 0 and resumed.stdout.strip() == "resumed alpha"
    assert daemon.entries()["alpha"]["halt"] is None
    trades_again(daemon, "alpha", halt["since_ms"])

    # The same with --all.
    everything = daemon.cli("halt", "--all", "--json")
    assert everything.returncode == 0, everything.stderr
    answer = json.loads(everything.stdout)["strategies"]
    assert [s["name"] for s in answer] == ["alpha", "beta"] and all(s["halted"] for s in answer)
    entries = daemon.entries()
    assert all(e["halt"]["reason"] == "halted by the operator" for e in entries.values())
    for name in ("alpha", "beta"):
        check_halted_for_30_candles(daemon, name, entries[name]["halt"]["since_ms"])
    assert daemon.cli("resume", "--all").stdout.split("\n")[:2] == ["resumed alpha", "resumed beta"]
    for name in ("alpha", "beta"):
        trades_again(daemon, name, entries[name]["halt"]["since_ms"])


def test_bad_input_changes_nothing(daemon: RunningDaemon, tmp_path: Path) -> None:
    deploy(daemon, tmp_path, "alpha")
    for args, words in (
        (("halt", "nobody"), "no strategy named 'nobody'"),
        (("resume", "alpha"), "alpha is not halted"),
        (("kill", "nobody", "--flatten"), "no strategy named 'nobody'"),
        (("halt",), "give the strategy's NAME, or --all"),
        (("halt", "alpha", "--all"), "not both"),
        (("halt", "alpha", "--reason", ""), "--reason must be 1 to 500 characters"),
    ):
        result = cli(daemon, *args)
        assert result.returncode != 0, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qkt: error: ") and words in lines[0], (
            args,
            result.stderr,
        )
    assert daemon.entries()["alpha"]["halt"] is None
    for path, status, code in (
        ("/halt/nobody", 404, "not_found"),
        ("/resume/alpha", 409, "not_halted"),
        ("/kill/nobody", 404, "not_found"),
        ("/halt/alpha?reason=", 422, "invalid_request"),
    ):
        answer = daemon.post(path)
        assert answer.status_code == status, (path, answer.text)
        assert answer.json()["error"]["code"] == code
    assert daemon.post("/resume").json() == {"strategies": []}  # nothing halted: nothing to do
    assert daemon.entries()["alpha"]["halt"] is None
    unauthorized = requests.post(daemon.url("/halt/alpha"), timeout=10)
    assert unauthorized.status_code == 401
    assert daemon.entries()["alpha"]["halt"] is None
    for flag, value, words in (
        ("--max-daily-loss", "-5", "--max-daily-loss: -5 must be above 0"),
        ("--max-drawdown-pct", "150", "--max-drawdown-pct: 150 must be a percent"),
        ("--max-orders-per-minute", "2.5", "is not a whole number"),
        ("--max-loss-streak", "1e9", "absurdly large"),
        ("--max-position-notional", "1e20", "absurdly large"),
        ("--leverage", "500", "--leverage: 500 must be from 1 to 100"),
        ("--margin", "maybe", "--margin: 'maybe' must be `on` or `off`"),
    ):
        path = tmp_path / "other.qkt"
        path.write_text(ALWAYS.format(name="other"))
        result = cli(daemon, "deploy", str(path), flag, value)
        assert result.returncode != 0 and words in result.stderr, (flag, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    body = {"file": str(tmp_path / "other.qkt"), "max_daily_loss": "-5"}
    refused = daemon.post("/deploy", json=body)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_risk_limit"
    assert "--max-daily-loss: -5 must be above 0" in refused.json()["error"]["message"]
    assert set(daemon.entries()) == {"alpha"}


def test_kill_all_flatten_holds_across_a_daemon_kill_9(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with running_daemon(root, "--speed", "20", worker=REAL_WORKER) as daemon:
        for name in ("alpha", "beta"):
            deploy(daemon, tmp_path, name)
        for name in ("alpha", "beta"):
            wait_until(lambda n=name: worker(daemon, n, "/status")["positions"], what="positions")
        killed = daemon.cli("kill", "--all", "--flatten")
        assert killed.returncode == 0, killed.stderr
        assert killed.stdout.splitlines() == [
            "killed alpha: killed by the operator; positions left: none",
            "killed beta: killed by the operator; positions left: none",
        ]
        for name, entry in daemon.entries().items():
            assert entry["halt"]["killed"] and worker(daemon, name, "/status")["positions"] == []
        trades = {name: worker(daemon, name, "/status")["trades"] for name in ("alpha", "beta")}
        daemon.stop(signal.SIGKILL)
    with running_daemon(root, "--speed", "20", worker=REAL_WORKER) as daemon:
        for name in ("alpha", "beta"):
            daemon.wait_state(name, "running", timeout=60)
        start = {name: candles(daemon, name) for name in ("alpha", "beta")}
        wait_until(
            lambda: all(candles(daemon, n) >= start[n] + 30 for n in start),
            timeout=30,
            what="30 candles after the restart",
        )
        lines = daemon.cli("list").stdout.splitlines()
        assert all("halted" in line for line in lines[1:]), lines
        for name in ("alpha", "beta"):
            status = worker(daemon, name, "/status")
            assert status["positions"] == [] and status["trades"] == trades[name]
            assert status["risk"]["halt"]["killed"] is True
