"""A worker's `POST /halt`, `/resume`, `/kill` (docs/risk.md) against a real hub process: the
token guards them, the halt is on disk before the answer (a restarted worker is still halted),
a halt handed in the spec is applied by a worker whose journal holds none, and every halt is
an event and a count in `/metrics`."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qkt.hub import HubEndpoints
from qkt.worker.spec import WorkerSpec
from tests.helpers import wait_until
from tests.worker.harness import FLIP, FLIP_KEY, get, hub_process, post, running, worker_args

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubEndpoints]:
    with hub_process(tmp_path_factory.mktemp("hub"), [FLIP_KEY]) as endpoints:
        yield endpoints


def make_spec(tmp_path: Path, hub: HubEndpoints, **changes: Any) -> WorkerSpec:
    token = tmp_path / "control.token"
    token.write_text(TOKEN)
    return WorkerSpec(
        name="flip",
        file=str(tmp_path / "flip.qkt"),
        source=FLIP,
        state_dir=str(tmp_path / "state"),
        hub_pub=hub.pub,
        hub_snapshot=hub.snapshot,
        token_file=str(token),
        limits={"max_orders_per_minute": "off"},
        **changes,
    )


def port_of(spec: WorkerSpec) -> int:
    return int(wait_until(lambda: spec.port_file.exists() and spec.port_file.read_text(), 20))


def test_halt_is_guarded_saved_at_once_counted_and_resumed(
    tmp_path: Path, hub: HubEndpoints
) -> None:
    spec = make_spec(tmp_path, hub)
    with running(worker_args(spec.to_json())) as worker:
        port = port_of(spec)
        wait_until(
            lambda: get(port, "/status", headers=AUTH).json()["trades"] >= 2, 20, what="trades"
        )
        assert post(port, "/halt").status_code == 401
        assert post(port, "/halt", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert get(port, "/status", headers=AUTH).json()["risk"]["halted"] is False
        refused = post(port, "/halt?kind=max_daily_loss", headers=AUTH)
        assert refused.status_code == 422  # a worker's own limits are not the caller's to claim
        answer = post(port, "/halt?reason=enough&by=tester", headers=AUTH)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["name"] == "flip" and body["halted"] is True
        assert body["halt"]["reason"] == "enough" and body["halt"]["by"] == "tester"
        risk = get(port, "/status", headers=AUTH).json()["risk"]
        assert risk["halt"] == body["halt"] and risk["halts"] == {"operator": 1}
        assert risk["limits"]["max_orders_per_minute"] is None
        metrics = get(port, "/metrics", headers=AUTH).text
        assert 'qkt_halts_total{reason="operator",strategy="flip"} 1.0' in metrics
        assert 'qkt_worker_halted{strategy="flip"} 1.0' in metrics
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    log = spec.log_file.read_text()
    assert "RISK halt operator by tester: enough" in log
    with running(worker_args(spec.to_json())) as worker:  # the journal kept the halt
        port = port_of(spec)
        status = get(port, "/status", headers=AUTH).json()
        assert status["risk"]["halt"] == body["halt"]
        trades = status["trades"]
        resumed = post(port, "/resume", headers=AUTH)
        assert resumed.status_code == 200 and resumed.json()["halt"] is None
        again = post(port, "/resume", headers=AUTH)
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_halted"
        wait_until(
            lambda: get(port, "/status", headers=AUTH).json()["trades"] > trades, 20, what="trading"
        )
        killed = post(port, "/kill?flatten=true", headers=AUTH).json()
        assert killed["halt"]["killed"] is True and killed["positions"] == []
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0


def test_a_halt_in_the_spec_is_applied_when_the_journal_holds_none(
    tmp_path: Path, hub: HubEndpoints
) -> None:
    saved = {"kind": "operator", "reason": "from the daemon", "by": "operator",
             "since_ms": 1, "killed": False}  # fmt: skip
    spec = make_spec(tmp_path, hub, halt=saved)
    with running(worker_args(spec.to_json())) as worker:
        port = port_of(spec)
        halt = get(port, "/status", headers=AUTH).json()["risk"]["halt"]
        assert halt["reason"] == "from the daemon" and halt["kind"] == "operator"
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    daily = {**saved, "kind": "portfolio_daily_loss"}  # may have lifted since: not re-applied
    (tmp_path / "other").mkdir()
    spec = make_spec(tmp_path / "other", hub, halt=daily)
    with running(worker_args(spec.to_json())) as worker:
        port = port_of(spec)
        assert get(port, "/status", headers=AUTH).json()["risk"]["halt"] is None
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
