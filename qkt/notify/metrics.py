"""Prometheus families over the channels' health, read at each scrape (one source of truth)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from qkt.notify.channel import ChannelHealth, ChannelState


class NotifyCollector(Collector):
    """`qkt_notify_{sent,failed,dropped,coalesced}` counters and a `qkt_notify_state` gauge."""

    def __init__(self, health: Callable[[], Sequence[ChannelHealth]]) -> None:
        self._health = health

    def collect(self) -> Iterator[Metric]:
        channels = self._health()
        labels = ["channel", "kind"]
        for field, text in (
            ("sent", "Messages delivered."),
            ("failed", "Delivery attempts that failed."),
            ("dropped", "Events given up on after the retry budget."),
            ("coalesced", "Events delivered inside another event's message."),
        ):
            family = CounterMetricFamily(f"qkt_notify_{field}", text, labels=labels)
            for health in channels:
                family.add_metric([health.name, health.kind], getattr(health, field))
            yield family
        pending = GaugeMetricFamily("qkt_notify_pending", "Events waiting.", labels=labels)
        for health in channels:
            pending.add_metric([health.name, health.kind], health.pending)
        yield pending
        state = GaugeMetricFamily(
            "qkt_notify_state", "1 for the channel's current state.", labels=[*labels, "state"]
        )
        for health in channels:
            for value in ChannelState:
                current = 1.0 if health.state is value else 0.0
                state.add_metric([health.name, health.kind, value.value], current)
        yield state
