"""`GET /metrics`: the daemon's Prometheus metrics, one scrape for every strategy.

Daemon figures (strategies by state, restarts, hub keys) are read from live state; each
strategy's money and health (equity, PnL, trades, state, halt, warm-up, candle times) come from
the figures its worker stores in its heartbeat file (`qkt.worker.beatfigures`), which the
daemon reads from memory at each scrape: a Prometheus at 1 s against a thousand workers costs
no request to any of them.

Money is exported as floats: a Prometheus sample is a float. The exact figures stay in
`/status` and `qkt list -a --json`.
"""

from __future__ import annotations

import time
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
    """Strategies by state, per-strategy figures, restarts, and the hub keys."""

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
        yield from self._strategies()
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

    def _strategies(self) -> Iterator[Metric]:
        """One series per strategy and figure, from the workers' last answers."""

        def gauge(
            metric: str, about: str, labels: tuple[str, ...] = ("name",)
        ) -> GaugeMetricFamily:
            return GaugeMetricFamily(metric, about, labels=list(labels))

        state = gauge(
            "qkt_strategy_state", "1 for the strategy's current state.", ("name", "state")
        )
        equity = gauge("qkt_strategy_equity", "Equity: balance plus unrealized PnL.")
        realized = gauge("qkt_strategy_realized_pnl", "Realized PnL since the books started.")
        unrealized = gauge("qkt_strategy_unrealized_pnl", "Unrealized PnL of open positions.")
        total = gauge("qkt_strategy_pnl", "Realized plus unrealized PnL.")
        trades = gauge("qkt_strategy_trades", "Fills in the strategy's journal.")
        halted = gauge("qkt_strategy_halted", "1 if new entries are halted.")
        warm = gauge("qkt_strategy_warm", "1 once every indicator has warmed up.")
        age = gauge("qkt_strategy_figures_age_seconds", "Age of the figures above.")
        candle = gauge(
            "qkt_strategy_last_candle_timestamp_seconds",
            "Open time of the last candle per stream (feed freshness: time() minus this).",
            ("name", "key"),
        )
        figures_of = self._daemon.registry.figures
        now_ms = time.time() * 1000
        for handle in self._daemon.registry.handles():
            name = handle.name
            state.add_metric([name, handle.state.value], 1)
            figures = figures_of.get(name)
            if figures is None:
                continue
            equity.add_metric([name], float(figures.equity))
            realized.add_metric([name], float(figures.realized))
            unrealized.add_metric([name], float(figures.unrealized))
            total.add_metric([name], float(figures.total_pnl))
            trades.add_metric([name], figures.trades)
            halted.add_metric([name], int(figures.halted))
            warm.add_metric([name], int(figures.warm))
            age.add_metric([name], max(0.0, (now_ms - figures.at_ms) / 1000))
            for key, open_ms in sorted(figures.last_candle_ts.items()):
                candle.add_metric([name, key], open_ms / 1000)
        yield from (state, equity, realized, unrealized, total, trades, halted, warm, age, candle)


def metrics_registry(daemon: Daemon) -> CollectorRegistry:
    """A registry of this app only (no process-global default registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    registry.register(daemon.collector())  # alert channels, per-key feed freshness
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of `registry`."""
    return generate_latest(registry)
