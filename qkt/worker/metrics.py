"""`/metrics`: the worker's figures in Prometheus text, read from its status on each scrape.

A collector over the status (not counters bumped along the way) keeps one source of truth: what
`/metrics` says is what `/status` says. Each app has its own `CollectorRegistry`, so nothing is
global and a forked worker shares nothing with its parent. Gauges of money are floats here by
necessity (Prometheus samples are floats); the books stay Decimal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from qkt.worker.record import RiskRecord, WorkerStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WorkerCollector(Collector):
    """Reads `status()` and yields the metric families."""

    def __init__(self, status: Callable[[], WorkerStatus]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        labels = {"strategy": status.name}
        names, values = list(labels), list(labels.values())

        trades = CounterMetricFamily("qkt_worker_trades", "Fills so far.", labels=names)
        trades.add_metric(values, status.trades)
        yield trades
        for field, text in (
            ("equity", "Balance plus unrealized PnL."),
            ("balance", "Starting balance plus realized PnL (fees included)."),
            ("realized", "Realized PnL, fees included."),
            ("unrealized", "Unrealized PnL of open positions at their marks."),
        ):
            gauge = GaugeMetricFamily(f"qkt_worker_{field}", text, labels=names)
            gauge.add_metric(values, float(getattr(status, field)))
            yield gauge
        candles = CounterMetricFamily(
            "qkt_worker_candles", "Live candles processed.", labels=[*names, "key"]
        )
        for key, count in status.candles.items():
            candles.add_metric([*values, key], count)
        yield candles
        positions = GaugeMetricFamily(
            "qkt_worker_position", "Signed position.", labels=[*names, "symbol"]
        )
        for position in status.positions:
            symbol = f"{position.broker}:{position.symbol}"
            positions.add_metric([*values, symbol], float(position.qty))
        yield positions
        warm = GaugeMetricFamily(
            "qkt_worker_warm", "1 once every indicator has a value.", labels=names
        )
        warm.add_metric(values, 1.0 if status.warm else 0.0)
        yield warm
        uptime = GaugeMetricFamily("qkt_worker_uptime_seconds", "Since start.", labels=names)
        uptime.add_metric(values, status.uptime_ms / 1000)
        yield uptime
        dropped = CounterMetricFamily(
            "qkt_worker_events_dropped", "Events dropped for slow SSE readers.", labels=names
        )
        dropped.add_metric(values, status.events.dropped)
        yield dropped
        risk = status.risk
        if risk is not None:
            yield from _risk_metrics(risk, names, values)
        subscriber = status.subscriber
        if subscriber is not None:
            missed = CounterMetricFamily(
                "qkt_worker_candles_missed", "Candles lost in hub gaps.", labels=names
            )
            missed.add_metric(values, subscriber.missed)
            yield missed


def _risk_metrics(risk: RiskRecord, names: list[str], values: list[str]) -> Iterator[Metric]:
    """Halts by reason (the kind: `operator` or the limit breached), rejections, halted now."""
    halts = CounterMetricFamily(
        "qkt_halts", "Halts (and kills) since the worker started.", labels=[*names, "reason"]
    )
    for reason, count in sorted(risk.halts.items()):
        halts.add_metric([*values, reason], count)
    yield halts
    rejected = CounterMetricFamily(
        "qkt_worker_orders_rejected",
        "Orders rejected (halted, a limit, buying power).",
        labels=names,
    )
    rejected.add_metric(values, risk.rejected)
    yield rejected
    halted = GaugeMetricFamily(
        "qkt_worker_halted", "1 while no new entries are made.", labels=names
    )
    halted.add_metric(values, 1.0 if risk.halted else 0.0)
    yield halted


def make_registry(status: Callable[[], WorkerStatus]) -> CollectorRegistry:
    """A fresh registry holding only this worker's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(status))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus text format."""
    return generate_latest(registry)
