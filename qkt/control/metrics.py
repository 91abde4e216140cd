"""`GET /metrics`: the daemon's Prometheus metrics, one scrape for every strategy.

Daemon figures (strategies by state, restarts, hub keys) are read from live state; each
strategy's money and health (equity, PnL, trades, state, halt, warm-up, candle times) come from
the figures its worker stores in its heartbeat file (`qkt.worker.beatfigures`), which the
daemon reads from memory at each scrape: a Prometheus at 1 s against a thousand workers costs
no request to any of them.

Formatting is what a scrape costs: about 11 samples per strategy, 11,000 at 1,000 strategies
(~0.15 s of `prometheus_client`'s formatting on a 2-core box). The series that change only with
a strategy's state, restarts or figures are formatted again only when one of those changed
(`Exposition`): most scrapes find none changed (the figures move once a candle, together a few
seconds after it) and format only the live ~1,000 rest (figures' ages, states, the hub).

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

from qkt.supervisor.figures import LastFigures
from qkt.supervisor.handle import WorkerHandle, WorkerState

if TYPE_CHECKING:
    from prometheus_client import Metric

    from qkt.supervisor.daemon import Daemon


class DaemonCollector(Collector):
    """What changes at every scrape: strategies by state, the figures' ages, the hub keys."""

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
        age = GaugeMetricFamily(
            "qkt_strategy_figures_age_seconds",
            "Age of the strategy's figures (equity, PnL, ...).",
            labels=["name"],
        )
        figures_of = self._daemon.registry.figures
        now_ms = time.time() * 1000
        for handle in handles:
            figures = figures_of.get(handle.name)
            if figures is not None:
                age.add_metric(
                    [handle.name], max(0.0, (now_ms - _vouched_ms(handle, figures)) / 1000)
                )
        yield age
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


def _vouched_ms(handle: WorkerHandle, figures: LastFigures) -> int:
    """When `figures` were last known to be the worker's own: when taken, or a later beat of a
    running worker that said its stored figures were still current (between candles, figures
    do not change: they are not old, however long since they were taken)."""
    reader = handle.heartbeat
    if reader is None or handle.state is not WorkerState.RUNNING:
        return figures.at_ms
    confirmed = reader.figures_confirmed_ms()
    return figures.at_ms if confirmed is None else max(figures.at_ms, confirmed)


# One strategy as its series show it: name, state, restarts, figures (None: none yet).
Row = tuple[str, WorkerState, int, LastFigures | None]


class FiguresCollector(Collector):
    """One series per strategy and figure (`rows`, set before each collection)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def collect(self) -> Iterator[Metric]:
        def gauge(
            metric: str, about: str, labels: tuple[str, ...] = ("name",)
        ) -> GaugeMetricFamily:
            return GaugeMetricFamily(metric, about, labels=list(labels))

        restarts = CounterMetricFamily(
            "qkt_strategy_restarts", "Restarts after a crash, per strategy.", labels=["name"]
        )
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
        candle = gauge(
            "qkt_strategy_last_candle_timestamp_seconds",
            "Open time of the last candle per stream (feed freshness: time() minus this).",
            ("name", "key"),
        )
        for name, worker_state, restart_count, figures in self.rows:
            restarts.add_metric([name], restart_count)
            state.add_metric([name, worker_state.value], 1)
            if figures is None:
                continue
            equity.add_metric([name], float(figures.equity))
            realized.add_metric([name], float(figures.realized))
            unrealized.add_metric([name], float(figures.unrealized))
            total.add_metric([name], float(figures.total_pnl))
            trades.add_metric([name], figures.trades)
            halted.add_metric([name], int(figures.halted))
            warm.add_metric([name], int(figures.warm))
            for key, open_ms in sorted(figures.last_candle_ts.items()):
                candle.add_metric([name, key], open_ms / 1000)
        yield from (restarts, state, equity, realized, unrealized, total, trades, halted, warm)
        yield candle


class Exposition:
    """The `/metrics` text of a daemon (registries of this app only, no process-global one)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._live = CollectorRegistry(auto_describe=False)
        self._live.register(DaemonCollector(daemon))
        self._live.register(daemon.collector())  # alert channels, per-key feed freshness
        self._strategies = FiguresCollector()
        self._figures = CollectorRegistry(auto_describe=False)
        self._figures.register(self._strategies)
        self._figures_text = b""
        self._rows: list[Row] | None = None  # what _figures_text shows

    def render(self) -> bytes:
        """The Prometheus text exposition, every strategy's figures as last read."""
        registry = self._daemon.registry
        figures = registry.figures
        rows = [(h.name, h.state, h.restarts, figures.get(h.name)) for h in registry.handles()]
        if rows != self._rows:  # figures are frozen records: equal rows show the same text
            self._strategies.rows = rows
            self._figures_text = generate_latest(self._figures)
            self._rows = rows
        return generate_latest(self._live) + self._figures_text
