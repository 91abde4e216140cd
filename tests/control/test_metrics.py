"""One scrape for every strategy: the daemon's /metrics carries each strategy's figures.

Parsed with prometheus-client's own text parser (no Prometheus needed); the scrape needs no
token, so a scrape configuration survives a daemon restart (new token, same --control-port).
The figures come from the workers' heartbeat files, not from asking each worker's `/status`.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

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
