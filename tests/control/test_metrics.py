"""One scrape for every strategy: the daemon's /metrics carries each strategy's figures.

Parsed with prometheus-client's own text parser (no Prometheus needed); the scrape needs no
token, so a scrape configuration survives a daemon restart (new token, same --control-port).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from qkt.control.metrics import FiguresPoller
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
            path = strategy(tmp_path / "files", name)
            assert daemon.cli("deploy", str(path), "--balance", balance).returncode == 0
        # Right after deploys the poller may not have asked yet; then every scrape has them.
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


class _Registry:
    def __init__(self) -> None:
        self.refreshes = 0

    async def status_all(self) -> list[object]:
        self.refreshes += 1
        return []


class _Daemon:
    stopping = False

    def __init__(self) -> None:
        self.registry = _Registry()


def test_the_figures_stop_being_refreshed_when_nobody_asks_and_start_again_on_a_scrape() -> None:
    """One `qkt list -a` (or a scrape that stopped) must not have every worker asked for its
    /status every few seconds for the rest of the daemon's life."""
    daemon = _Daemon()
    poller = FiguresPoller(daemon, interval_s=0.01, idle_stop_s=0.5)  # type: ignore[arg-type]

    async def scenario() -> None:
        await poller.ensure_running()
        task = poller._task
        assert task is not None and daemon.registry.refreshes >= 1
        await asyncio.wait_for(task, timeout=10)  # ends by itself: nobody asked since
        stopped_at = daemon.registry.refreshes
        assert stopped_at >= 2  # it did refresh in the background meanwhile
        await asyncio.sleep(0.05)
        assert daemon.registry.refreshes == stopped_at  # and no more once stopped
        await poller.ensure_running()  # the next scrape: figures now, and the loop again
        assert daemon.registry.refreshes == stopped_at + 1
        assert poller._task is not None and not poller._task.done()
        poller._task.cancel()

    asyncio.run(scenario())
