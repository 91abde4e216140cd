"""Issue 16's life-cycle verbs end to end: a real daemon and real workers, driven by the CLI.

restart NAME|--all, stop --all, list -a (stopped strategies with their final figures), rm NAME
[--purge], deploy --replace [--keep-state], and explicit name reuse (--resume / --fresh).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon

EVERY_CANDLE = """\
STRATEGY {name} VERSION 1
SYMBOLS s = SIM:{symbol} EVERY 1m
RULES
    WHEN s.close > 0 AND POSITION.s == 0 THEN BUY s SIZING 0.01
"""


def write(folder: Path, name: str, symbol: str = "BTCUSDT") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.qkt"
    path.write_text(EVERY_CANDLE.format(name=name.replace("-", "_"), symbol=symbol))
    return path


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("life")
    with running_daemon(root / "s", "--speed", "60", worker=REAL_WORKER) as running:
        yield running


def ok(daemon: RunningDaemon, *args: str) -> str:
    done = daemon.cli(*args)
    assert done.returncode == 0, f"qkt {' '.join(args)}: {done.stderr}"
    return done.stdout


def as_json(daemon: RunningDaemon, *args: str) -> Any:
    return json.loads(ok(daemon, *args, "--json"))


def fails(daemon: RunningDaemon, *args: str) -> str:
    done = daemon.cli(*args)
    assert done.returncode == 1, done
    assert done.stderr.startswith("qkt: error: ") and done.stderr.count("\n") == 1
    return done.stderr


def traded(daemon: RunningDaemon, name: str) -> dict[str, Any]:
    return wait_until(
        lambda: (s := as_json(daemon, "status", name)).get("trades", 0) > 0 and s,
        timeout=30,
        what=f"{name}'s first trade",
    )


@pytest.mark.slow
def test_restart_one_and_all(daemon: RunningDaemon, tmp_path: Path) -> None:
    for name in ("r1", "r2"):
        ok(daemon, "deploy", str(write(tmp_path, name)))
    before = {e["name"]: e for e in as_json(daemon, "list")}
    again = as_json(daemon, "restart", "r1")
    assert again["name"] == "r1" and again["state"] == "running"
    assert again["pid"] != before["r1"]["pid"]
    assert again["port"] == before["r1"]["port"]  # same deployment, same address
    assert daemon.entries()["r2"]["pid"] == before["r2"]["pid"]  # the other one untouched
    every = {e["name"]: e for e in as_json(daemon, "restart", "--all")}
    assert set(every) == {"r1", "r2"}
    assert all(e["state"] == "running" for e in every.values())
    assert every["r2"]["pid"] != before["r2"]["pid"]
    assert "no strategy named 'nope'" in fails(daemon, "restart", "nope")
    assert daemon.cli("restart").returncode == 2  # NAME or --all: a usage error
    ok(daemon, "stop", "--all")


@pytest.mark.slow
def test_stop_all_list_all_and_rm(daemon: RunningDaemon, tmp_path: Path) -> None:
    for name in ("a1", "a2"):
        ok(daemon, "deploy", str(write(tmp_path, name)))
    figures = traded(daemon, "a1")
    stopped = as_json(daemon, "stop", "--all")
    assert {s["name"] for s in stopped} == {"a1", "a2"}
    assert as_json(daemon, "list") == []
    rows = {r["name"]: r for r in as_json(daemon, "list", "-a")}
    assert rows["a1"]["state"] == "stopped" and rows["a1"]["exit_code"] == 0
    assert rows["a1"]["trades"] >= figures["trades"] and rows["a1"]["equity"] is not None
    table = ok(daemon, "list", "-a").splitlines()
    assert table[0].split() == [
        "NAME",
        "STATE",
        "UPTIME",
        "TRADES",
        "EQUITY",
        "PNL",
        "EXIT",
        "STOPPED",
    ]
    assert any(line.split()[:2] == ["a1", "stopped"] for line in table[1:])

    journal = daemon.state.journal("a1")
    assert journal.exists()
    removed = as_json(daemon, "rm", "a1")
    archived = Path(removed["archived"])
    assert archived.parent == daemon.state.root / "archive"
    assert (archived / "strategy" / "journal.sqlite").exists() and not journal.exists()
    assert (archived / "logs" / "a1.log").exists()
    purged = as_json(daemon, "rm", "a2", "--purge")
    assert purged["archived"] is None and not daemon.state.strategy_dir("a2").exists()
    assert not daemon.state.log_file("a2").exists()
    names = {r["name"] for r in as_json(daemon, "list", "-a")}
    assert not names & {"a1", "a2"}
    assert "no strategy named 'a1'" in fails(daemon, "rm", "a1")


@pytest.mark.slow
def test_rm_refuses_a_running_strategy(daemon: RunningDaemon, tmp_path: Path) -> None:
    ok(daemon, "deploy", str(write(tmp_path, "busy")))
    assert "stop it first" in fails(daemon, "rm", "busy")
    assert daemon.state.journal("busy").exists()
    ok(daemon, "stop", "busy")


@pytest.mark.slow
def test_name_reuse_is_explicit(daemon: RunningDaemon, tmp_path: Path) -> None:
    """The issue's case: a name stopped, then deployed from another file with other flags."""
    first, other = write(tmp_path, "reuse"), write(tmp_path / "other", "other", "ETHUSDT")
    ok(daemon, "deploy", str(first))
    old = traded(daemon, "reuse")
    ok(daemon, "stop", "reuse")
    # The same file and flags carry on with the same books.
    ok(daemon, "deploy", str(first))
    assert as_json(daemon, "status", "reuse")["trades"] >= old["trades"]
    ok(daemon, "stop", "reuse")

    message = fails(daemon, "deploy", str(other), "--as", "reuse", "--balance", "500")
    assert "--resume" in message and "--fresh" in message and str(other) in message
    assert "reuse" not in daemon.entries()
    # Other flags alone count too.
    assert "--fresh" in fails(daemon, "deploy", str(first), "--balance", "500")

    ok(daemon, "deploy", str(other), "--as", "reuse", "--balance", "500", "--fresh")
    fresh = traded(daemon, "reuse")  # its own books are written before it stops
    assert fresh["start_balance"] == "500" and fresh["keys"] == ["SIM:ETHUSDT:1m"]
    assert fresh["trades"] == 1  # its one entry, not the BTCUSDT trades of before
    assert any(p.name.startswith("reuse-") for p in (daemon.state.root / "archive").iterdir())
    ok(daemon, "stop", "reuse")
    # --resume keeps the books of whatever wrote them.
    ok(daemon, "deploy", str(first), "--as", "reuse", "--resume")
    assert as_json(daemon, "status", "reuse")["start_balance"] == "500"
    ok(daemon, "stop", "reuse")


@pytest.mark.slow
def test_deploy_replace_and_keep_state(daemon: RunningDaemon, tmp_path: Path) -> None:
    first, second = write(tmp_path, "rep"), write(tmp_path / "v2", "rep", "ETHUSDT")
    ok(daemon, "deploy", str(first))
    traded(daemon, "rep")
    assert "--replace" in fails(daemon, "deploy", str(second))
    archive = daemon.state.root / "archive"
    before = set(archive.iterdir()) if archive.exists() else set()
    replaced = as_json(daemon, "deploy", str(second), "--replace")
    assert replaced["file"] == str(second) and replaced["state"] == "running"
    assert len(set(archive.iterdir()) - before) == 1  # the old books, archived
    now = as_json(daemon, "status", "rep")
    assert now["keys"] == ["SIM:ETHUSDT:1m"]
    kept = traded(daemon, "rep")["trades"]
    as_json(daemon, "deploy", str(first), "--replace", "--keep-state")
    assert len(set(archive.iterdir()) - before) == 1  # nothing more archived
    assert as_json(daemon, "status", "rep")["trades"] >= kept
    ok(daemon, "stop", "rep")


def test_logs_of_the_daemon_and_grep(daemon: RunningDaemon) -> None:
    lines = ok(daemon, "logs", "daemon", "--lines", "1000").splitlines()
    assert any("qkt.supervisor" in line for line in lines)
    found = ok(daemon, "logs", "daemon", "--lines", "1000", "--grep", "control plane").splitlines()
    assert found and all("control plane" in line for line in found)
    assert len(found) < len(lines)
