"""`GET /metrics`: the daemon's Prometheus metrics, read from live state at each scrape."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from qkt.supervisor.handle import WorkerState

if TYPE_CHECKING:
    from prometheus_client import Metric

    from qkt.supervisor.daemon import Daemon


class DaemonCollector(Collector):
    """Strategies by state, restarts per strategy, hub keys' candles and subscribers."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def collect(self) -> Iterator[Metric]:
        handles = self._daemon.registry.handles()
        by_state = Counter(h.state for h in handles)
        strategies = GaugeMetricFamily(
            "qkt_strategies", "Deployed strategies by state.", labels=["state"]
        )
        for state in WorkerState:
            strategies.add_metric([state.value], by_state.get(state, 0))
        yield strategies
        restarts = CounterMetricFamily(
            "qkt_strategy_restarts", "Restarts after a crash, per strategy.", labels=["name"]
        )
        for handle in handles:
            restarts.add_metric([handle.name], handle.restarts)
        yield restarts
        published = CounterMetricFamily(
            "qkt_hub_candles_published", "Closed candles published, per hub key.", labels=["key"]
        )
        subscribers = GaugeMetricFamily(
            "qkt_hub_subscribers", "Strategies holding each hub key.", labels=["key"]
        )
        for line in self._daemon.hub_keys():
            published.add_metric([line.key], line.candles_published)
            subscribers.add_metric([line.key], line.subscribers)
        yield published
        yield subscribers
        yield GaugeMetricFamily(
            "qkt_daemon_uptime_seconds",
            "Seconds since the daemon started.",
            value=self._daemon.uptime_ms() / 1000,
        )


def metrics_registry(daemon: Daemon) -> CollectorRegistry:
    """A registry of this app only (no process-global default registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    registry.register(daemon.collector())  # alert channels, per-key feed freshness
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of `registry`."""
    return generate_latest(registry)
