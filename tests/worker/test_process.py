"""`python -m qkt.worker SPEC` against a real hub process: the daemon's contract, end to end."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from qkt.hub import HubEndpoints
from qkt.worker import EXIT_ALREADY_RUNNING
from qkt.worker.spec import WorkerSpec
from tests.helpers import PYTHON, wait_until
from tests.worker.harness import (
    FLIP,
    FLIP_KEY,
    get,
    hub_process,
    post,
    running,
    sse_events,
    status_when,
    worker_args,
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubEndpoints]:
    """One hub for the module: workers only read from it."""
    with hub_process(tmp_path_factory.mktemp("hub"), [FLIP_KEY]) as endpoints:
        yield endpoints


def _spec(tmp_path: Path, hub: HubEndpoints, **changes: Any) -> WorkerSpec:
    strategy = tmp_path / "flip.qkt"
    strategy.write_text(FLIP)
    fields: dict[str, Any] = {
        "name": "flip",
        "file": str(strategy),
        "source": FLIP,
        "state_dir": str(tmp_path / "state"),
        "hub_pub": hub.pub,
        "hub_snapshot": hub.snapshot,
        **changes,
    }
    return WorkerSpec(**fields)


def _port(spec: WorkerSpec) -> int:
    text = wait_until(lambda: spec.port_file.exists() and spec.port_file.read_text(), 20)
    return int(text)


def test_worker_serves_trades_journals_and_exits_0_on_sigterm(
    tmp_path: Path, hub: HubEndpoints
) -> None:
    spec = _spec(tmp_path, hub)
    with running(worker_args(spec.to_json())) as worker:
        port = _port(spec)
        assert get(port, "/health").json() == {"status": "ok"}
        status = status_when(port, lambda s: s["trades"] >= 4)
        assert status["name"] == "flip" and status["strategy"] == "flip"
        assert status["version"] == 3 and status["pid"] == worker.pid
        assert status["keys"] == [FLIP_KEY] and status["state"] == "running"
        for field in ("balance", "equity", "realized", "unrealized"):
            assert isinstance(status[field], str)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    assert not spec.port_file.exists()
    with closing(sqlite3.connect(spec.journal_file)) as db:
        fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        saved = db.execute("SELECT COUNT(*) FROM state").fetchone()[0]
    assert fills >= 4 and saved == 1
    assert not list(spec.journal_file.parent.glob("prewarm*"))  # its scratch journal is gone
    log = spec.log_file.read_text()
    assert "FILL BUY 0.01 BTCUSDT" in log and "stopping (SIGTERM)" in log
    # A candle's lines are written a second after it, yet the file stays in time order: the
    # worker's own lines (the stop's) first write those still waiting.
    stamps = [line.split(" ", 1)[0] for line in log.splitlines() if line.startswith("20")]
    assert stamps == sorted(stamps)


def test_snapshot_history_warms_up_and_is_never_traded(tmp_path: Path, hub: HubEndpoints) -> None:
    spec = _spec(tmp_path, hub, warmup=50)
    with running(worker_args(spec.to_json())) as worker:
        port = _port(spec)
        status = status_when(port, lambda s: s["trades"] >= 2)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    # The hub had history for this key: the worker warmed up on it, and traded only from the
    # first live candle on (equity rows are written for live candles only).
    assert status["warmup_candles"] > 0
    with closing(sqlite3.connect(spec.journal_file)) as db:
        first_live_close = db.execute("SELECT MIN(ts) FROM equity").fetchone()[0]
        earliest_fill = db.execute("SELECT MIN(ts) FROM fills").fetchone()[0]
    assert earliest_fill >= first_live_close


def test_a_second_worker_with_the_same_name_refuses_to_start(
    tmp_path: Path, hub: HubEndpoints
) -> None:
    spec = _spec(tmp_path, hub)
    with running(worker_args(spec.to_json())) as first:
        _port(spec)
        second = subprocess.run(worker_args(spec.to_json()), timeout=30, capture_output=True)
        assert second.returncode == EXIT_ALREADY_RUNNING
        assert f"(pid {first.pid}); stop it first" in spec.log_file.read_text()
        first.signal(signal.SIGTERM)
        assert first.wait() == 0


def test_worker_exits_by_itself_when_its_parent_dies(tmp_path: Path, hub: HubEndpoints) -> None:
    with running([PYTHON, "-c", "import time; time.sleep(120)"]) as parent:
        spec = _spec(tmp_path, hub, parent_pid=parent.pid)
        with running(worker_args(spec.to_json())) as worker:
            _port(spec)
            parent.kill()
            assert worker.wait(timeout=10) == 0
    assert f"parent pid {parent.pid} died" in spec.log_file.read_text()


def test_sse_delivers_trade_and_candle_events_live(tmp_path: Path, hub: HubEndpoints) -> None:
    spec = _spec(tmp_path, hub)
    with running(worker_args(spec.to_json())) as worker:
        port = _port(spec)
        events = sse_events(port, {"trade", "candle"})
        trade = next(e for e in events if e["event"] == "trade")["data"]
        assert trade["side"] in {"BUY", "SELL"} and trade["symbol"] == "BTCUSDT"
        assert isinstance(trade["price"], str) and trade["qty"] == "0.01"
        candle = next(e for e in events if e["event"] == "candle")["data"]
        assert candle["key"] == FLIP_KEY and isinstance(candle["close"], str)
        ids = [e["sse_id"] for e in events]
        assert ids == sorted(ids) and all(e["sse_id"] == e["data"]["event_id"] for e in events)
        # Resume: with Last-Event-ID the ring replays what came after it, first.
        resumed = sse_events(port, {"trade"}, headers={"Last-Event-ID": str(ids[0])})
        assert resumed[0]["sse_id"] == ids[0] + 1
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0


def test_logs_and_trades_page_forward_without_gaps(tmp_path: Path, hub: HubEndpoints) -> None:
    spec = _spec(tmp_path, hub)
    with running(worker_args(spec.to_json())) as worker:
        port = _port(spec)
        status_when(port, lambda s: s["trades"] >= 12)
        paged: list[dict[str, Any]] = []
        after = 0
        while len(paged) < 12:
            page = get(port, "/trades", params={"after": after, "limit": 5}).json()
            assert 1 <= len(page["trades"]) <= 5
            paged += page["trades"]
            after = page["last_id"]
        assert [t["id"] for t in paged] == list(range(1, len(paged) + 1))
        latest = get(port, "/trades", params={"limit": 3}).json()
        assert [t["id"] for t in latest["trades"]] == sorted(t["id"] for t in latest["trades"])
        assert latest["total"] >= len(paged)

        events: list[dict[str, Any]] = []
        since = 0
        for _ in range(4):
            page = get(port, "/logs", params={"since": since, "limit": 7}).json()
            events += page["events"]
            since = page["last_id"]
        ids = [e["event_id"] for e in events]
        assert ids == list(range(1, len(ids) + 1)) and len(ids) == 28
        assert {e["type"] for e in events} >= {"log", "candle", "trade", "signal"}
        bad = get(port, "/logs", params={"limit": "many"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        assert get(port, "/nope").json()["error"]["code"] == "not_found"
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0


def test_stop_needs_the_bearer_token_and_flattens(tmp_path: Path, hub: HubEndpoints) -> None:
    token = tmp_path / "control.token"
    token.write_text("s3cret\n")
    strategy = tmp_path / "hold.qkt"
    source = (
        "STRATEGY hold VERSION 1\n"
        "SYMBOLS btc = SIM:BTCUSDT EVERY 1s\n"
        "RULES WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.1\n"  # 0.1 BTC: within 10,000
    )
    strategy.write_text(source)
    spec = _spec(tmp_path, hub, file=str(strategy), source=source, token_file=str(token))
    with running(worker_args(spec.to_json())) as worker:
        port = _port(spec)
        status_when(port, lambda s: s["positions"] != [], token="s3cret")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            denied = post(port, "/stop", params={"flatten": "true"}, headers=headers)
            assert denied.status_code == 401
            assert denied.json()["error"]["code"] == "unauthorized"
        accepted = post(
            port, "/stop", params={"flatten": "true"}, headers={"Authorization": "Bearer s3cret"}
        )
        assert accepted.status_code == 202
        assert accepted.json() == {"status": "stopping", "flatten": True}
        assert worker.wait() == 0
    with closing(sqlite3.connect(spec.journal_file)) as db:
        last = db.execute("SELECT side, position, role FROM fills ORDER BY id DESC").fetchone()
    assert last == ("SELL", "0", "CLOSE")


def test_metrics_and_openapi(tmp_path: Path, hub: HubEndpoints) -> None:
    spec = _spec(tmp_path, hub)
    with running(worker_args(spec.to_json())) as worker:
        port = _port(spec)
        status_when(port, lambda s: s["trades"] >= 2)
        text = get(port, "/metrics").text
        assert 'qkt_worker_trades_total{strategy="flip"}' in text
        assert 'qkt_worker_candles_total{key="SIM:BTCUSDT:1s",strategy="flip"}' in text
        assert 'qkt_worker_equity{strategy="flip"} 10000.0' in text
        schema = get(port, "/openapi.json").json()
        status_schema = schema["components"]["schemas"]["StatusOut"]["properties"]
        assert {"trades", "equity", "positions", "keys", "warm"} <= set(status_schema)
        assert set(schema["paths"]) >= {"/health", "/status", "/events", "/logs", "/trades"}
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0


def test_the_worker_runs_the_specs_source_not_the_file_on_disk(
    tmp_path: Path, hub: HubEndpoints
) -> None:
    spec = _spec(tmp_path, hub)
    Path(spec.file).write_text("this is not a strategy any more\n")
    with running(worker_args(spec.to_json())) as worker:
        status = status_when(_port(spec), lambda s: s["trades"] >= 1)
        assert status["strategy"] == "flip"
        assert status["source_hash"] == hashlib.sha256(FLIP.encode()).hexdigest()
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0


def test_an_unreadable_spec_exits_2_with_a_message() -> None:
    result = subprocess.run(worker_args(b"{nope"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "worker spec is not JSON" in result.stderr


def test_a_file_that_does_not_compile_is_logged_and_exits_1(
    tmp_path: Path, hub: HubEndpoints
) -> None:
    spec = _spec(
        tmp_path, hub, source="STRATEGY broken VERSION 1\nRULES WHEN x > 1 THEN CLOSE_ALL\n"
    )
    result = subprocess.run(worker_args(spec.to_json()), capture_output=True, timeout=30)
    assert result.returncode == 1
    log = spec.log_file.read_text()
    assert f"{spec.file}:2:" in log and "Traceback" not in log
    assert not spec.port_file.exists()


def test_a_journal_from_a_newer_qkt_is_refused_clearly(tmp_path: Path, hub: HubEndpoints) -> None:
    spec = _spec(tmp_path, hub)
    spec.journal_file.parent.mkdir(parents=True)
    with closing(sqlite3.connect(spec.journal_file)) as db:
        db.execute("PRAGMA user_version=99")
    result = subprocess.run(worker_args(spec.to_json()), capture_output=True, timeout=30)
    assert result.returncode == 1
    assert "schema version 99, newer than this qkt reads" in spec.log_file.read_text()
