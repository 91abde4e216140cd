"""One scrape for every strategy: the daemon's /metrics carries each strategy's figures.

Parsed with prometheus-client's own text parser (no Prometheus needed); the scrape needs no
token, so a scrape configuration survives a daemon restart (new token, same --control-port).
The figures come from the workers' heartbeat files, not from asking each worker's `/status`.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from qkt.control.metrics import Exposition
from qkt.supervisor.figures import LastFigures
from qkt.supervisor.handle import WorkerState
from qkt.worker.heartbeat import HeartbeatReader, HeartbeatWriter
from tests.helpers import REPO_ROOT, wait_until
from tests.supervisor.daemons import running_daemon, strategy

BALANCES = {"m-one": "1000", "m-two": "2000.5", "m-three": "30000"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """metric name -> {sorted labels: value}, from one unauthenticated GET /metrics."""
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def equities(port: int) -> dict[str, float]:
    series = scrape(port).get("qkt_strategy_equity", {})
    return {dict(labels)["name"]: value for labels, value in series.items()}


@pytest.mark.slow
def test_one_scrape_has_every_strategy_and_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    args = ("--control-port", str(port))
    expected = {name: float(balance) for name, balance in BALANCES.items()}
    with running_daemon(tmp_path / "s", *args) as daemon:
        for name, balance in BALANCES.items():
            # Each /status answers 500: what the scrape shows came from the heartbeat files.
            path = strategy(tmp_path / "files", name, "figures-only")
            assert daemon.cli("deploy", str(path), "--balance", balance).returncode == 0
        assert wait_until(lambda: equities(port) == expected, timeout=20)
        metrics = scrape(port)
        states = {dict(k)["name"]: dict(k)["state"] for k in metrics["qkt_strategy_state"]}
        assert states == dict.fromkeys(BALANCES, "running")
        assert set(metrics["qkt_strategy_trades"]) and set(metrics["qkt_strategy_pnl"])
        candles = metrics.get("qkt_strategy_last_candle_timestamp_seconds", {})
        assert {dict(k)["name"] for k in candles} <= set(BALANCES)
        first_token = daemon.token()
        # The shipped Grafana dashboard reads only series this scrape has.
        dashboard = json.loads((REPO_ROOT / "docs" / "grafana" / "qkt.json").read_text())
        exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
        used = {name for expr in exprs for name in re.findall(r"qkt_[a-z_]+", expr)}
        assert used and used <= set(metrics) | {"qkt_strategy_last_candle_timestamp_seconds"}
    # A new daemon on the same state dir and port: new token, the same scrape works.
    with running_daemon(tmp_path / "s", *args) as daemon:
        assert daemon.token() != first_token
        assert wait_until(lambda: equities(port) == expected, timeout=30)


class Collected(Collector):
    def collect(self) -> Iterator[Metric]:
        return iter(())


def test_the_figures_are_formatted_again_only_when_one_changed() -> None:
    """At 1,000 strategies formatting 10,000 figure samples was most of a scrape's 0.2 s: a
    scrape that finds no strategy's state, restarts or figures changed reuses their text."""
    handles = [
        SimpleNamespace(name=f"s{i}", state=WorkerState.RUNNING, restarts=0, heartbeat=None)
        for i in range(3)
    ]
    at_ms = int(time.time() * 1000)
    figures = {
        h.name: LastFigures("1000", "0", "0", "0", 2, True, False, {"SIM:BTCUSDT:1m": 0}, at_ms)
        for h in handles
    }
    daemon = SimpleNamespace(
        registry=SimpleNamespace(handles=lambda: handles, figures=figures),
        hub_keys=lambda: [],
        uptime_ms=lambda: 1000,
        collector=Collected,
    )
    exposition = Exposition(daemon)  # type: ignore[arg-type]

    def parsed() -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        for family in text_string_to_metric_families(exposition.render().decode()):
            for sample in family.samples:
                name = sample.labels.get("name", "")
                found.setdefault(sample.name, {})[name] = sample.value
        return found

    first = parsed()
    assert first["qkt_strategy_equity"] == {"s0": 1000, "s1": 1000, "s2": 1000}
    assert set(first["qkt_strategy_figures_age_seconds"]) == {"s0", "s1", "s2"}
    text = exposition._figures_text
    parsed()
    assert exposition._figures_text is text  # nothing changed: not formatted again
    figures["s1"] = replace(figures["s1"], equity="1250.5", trades=3)
    handles[2].restarts = 1
    again = parsed()
    assert exposition._figures_text is not text
    assert again["qkt_strategy_equity"]["s1"] == 1250.5
    assert again["qkt_strategy_trades"]["s1"] == 3
    assert again["qkt_strategy_restarts_total"]["s2"] == 1


def test_the_figures_age_counts_from_the_last_beat_that_vouched_for_them(tmp_path: Path) -> None:
    """A 1h strategy's figures, taken at its last candle, are not 40 minutes old while its
    worker's beats keep saying they are still its figures; a stopped worker's are as old as
    they are."""
    writer = HeartbeatWriter(tmp_path / "heartbeat")
    now_ms = int(time.time() * 1000)
    taken = LastFigures("1000", "0", "0", "0", 2, True, False, {}, now_ms - 2_400_000)
    writer.confirm_figures(now_ms - 1_000)
    handle = SimpleNamespace(
        name="hourly",
        state=WorkerState.RUNNING,
        restarts=0,
        heartbeat=HeartbeatReader(tmp_path / "heartbeat"),
    )
    daemon = SimpleNamespace(
        registry=SimpleNamespace(handles=lambda: [handle], figures={"hourly": taken}),
        hub_keys=lambda: [],
        uptime_ms=lambda: 1000,
        collector=Collected,
    )
    exposition = Exposition(daemon)  # type: ignore[arg-type]

    def age() -> float:
        for family in text_string_to_metric_families(exposition.render().decode()):
            for sample in family.samples:
                if sample.name == "qkt_strategy_figures_age_seconds":
                    return float(sample.value)
        raise AssertionError("no figures age")

    assert 0.5 < age() < 60
    handle.state = WorkerState.BACKOFF  # not running: nothing vouches for them any more
    assert age() > 2_000
