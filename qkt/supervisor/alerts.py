"""The daemon's alerts: one `Alerts` object wires qkt.notify into the daemon.

    alerts = Alerts(config.notify)            # parsed (and refused if wrong) with the config
    await alerts.start(daemon)                # channels' senders, Telegram commands, summary
    registry = Registry(..., emit=alerts.emit)  # deploy, stop, crash, restart, gave up, failed
    hub.add_listener(alerts.on_feed)          # feed stale / live again
    alerts.emit(Event.halt(...))              # anything else in the daemon (halts, risk)
    await alerts.aclose()                     # the stop message gets a few seconds to leave

`emit` never blocks and never raises: a dead receiver costs the daemon nothing. The daily
summary is built from the figures the workers store in their heartbeat files, gathered
periodically and again right before the summary is due; its clock is injected (`clock=`) so
tests need not wait. A worker's `/status` is asked only for what its heartbeat lacks: the fill
behind a trade count that grew (when a channel wants fills), or figures it never stored (a worker
of an older qkt), so neither a thousand strategies nor fills every few seconds fan out requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from qkt.hub import FeedEvent
from qkt.notify import ChannelHealth, Event, EventKind, Notifier, NotifyConfig, SummaryScheduler
from qkt.notify.summary import Clock, utc_now
from qkt.supervisor.chatops import ChatActions
from qkt.supervisor.dayfigures import DayFigures, StrategyFigures
from qkt.supervisor.figures import LastFigures
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.records import RunningStatus
from qkt.timefmt import iso_utc

if TYPE_CHECKING:
    from qkt.supervisor.daemon import Daemon

log = logging.getLogger(__name__)

FIGURES_EVERY_S: Final = 60.0  # how often the workers' figures are read for the summary
FILLS_EVERY_S: Final = 2.0  # ... and for fills, when a channel asked for them
TICK_S: Final = 0.5  # how often the summary's due time is checked against the clock


class Alerts:
    """Every channel of the daemon's `[notify]` config, fed by the daemon's events."""

    def __init__(
        self, config: NotifyConfig, *, clock: Clock = utc_now, notifier: Notifier | None = None
    ) -> None:
        self.config = config
        self.notifier = notifier or Notifier(config)
        self.figures = DayFigures(clock)
        self._clock = clock
        self._daemon: Daemon | None = None
        self._task: asyncio.Task[None] | None = None
        self._trades: dict[str, int] = {}  # name -> trades last seen (fills: the new ones)
        self.scheduler: SummaryScheduler | None = None
        self.wants_fills = any(EventKind.FILL in c.events for c in config.channels)

    def emit(self, event: Event) -> None:
        """Publish `event` to every channel subscribed to its kind. Never blocks or raises."""
        if event.kind is EventKind.HALT and event.strategy is not None:
            self.figures.halted(event.strategy)  # the summary's halts of the day
        self.notifier.publish(event)

    async def start(self, daemon: Daemon) -> None:
        """Start the senders, the command pollers and (with `summary_at`) the summary."""
        self._daemon = daemon
        await self.notifier.start(actions=ChatActions(daemon))
        if not self.config.channels:
            return
        if self.config.summary_at is not None:
            self.scheduler = SummaryScheduler(
                self.config.summary_at, self.figures.summary, self.emit, self._clock
            )
        if self.scheduler is not None or self.wants_fills:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="alerts")

    def on_feed(self, event: FeedEvent) -> None:
        """The hub's listener: a key went stale or came back live."""
        readers = self._readers(event.key)
        if event.stale:
            age = event.last_candle_age_ms
            self.emit(
                Event.of(
                    EventKind.STALE,
                    None,
                    time_ms=event.at_ms,
                    key=event.key,
                    reason=event.reason,
                    silent_s=None if age is None else f"{age / 1000:.0f}",
                    strategies=", ".join(readers) or None,
                )
            )
        else:
            self.emit(
                Event.of(
                    EventKind.LIVE,
                    None,
                    time_ms=event.at_ms,
                    key=event.key,
                    strategies=", ".join(readers) or None,
                )
            )

    def _readers(self, key: str) -> list[str]:
        if self._daemon is None:
            return []
        with contextlib.suppress(AssertionError):
            return [
                handle.name
                for handle in self._daemon.registry.handles()
                if key in (str(k) for k in handle.keys)
            ]
        return []

    def health(self) -> tuple[ChannelHealth, ...]:
        return self.notifier.health()

    def collector(self) -> Collector:
        return self.notifier.collector()

    async def _watch(self) -> None:
        """Gather figures now and then (often if fills are wanted); send the summary when due."""
        every = FILLS_EVERY_S if self.wants_fills else FIGURES_EVERY_S
        loop = asyncio.get_running_loop()
        next_gather = loop.time()
        while True:
            try:
                due = self.scheduler is not None and self._clock() >= self.scheduler.due
                if due or loop.time() >= next_gather:
                    await self.gather()
                    next_gather = loop.time() + every
                if due and self.scheduler is not None:
                    self.scheduler.tick()
            except Exception:
                log.exception("alerts: gathering the workers' figures failed")
            await asyncio.sleep(TICK_S)

    async def gather(self) -> None:
        """Every running worker's figures into the day's figures, and its fills: from its
        heartbeat file, and from its `/status` only where that lacks something."""
        assert self._daemon is not None
        registry = self._daemon.registry
        handles = registry.handles()
        running = [h for h in handles if h.state is WorkerState.RUNNING]
        stored = registry.read_figures()
        asked = [h.name for h in running if self._needs_status(h, stored.get(h.name))]
        found = await asyncio.gather(
            *(registry.status_of(name) for name in asked), return_exceptions=True
        )
        for status in found:
            if isinstance(status, RunningStatus):
                self.figures.observe(status)
                self._fills(status)
        for handle in running:
            figures = stored.get(handle.name)
            if figures is None or handle.name in asked:
                continue
            started = None if handle.started_at_ms is None else iso_utc(handle.started_at_ms)
            day = StrategyFigures(figures.equity, figures.realized, figures.trades)
            self.figures.take(handle.name, day, started, handle.deployment.balance)
            if handle.name not in self._trades:  # where new fills will count from
                self._trades[handle.name] = _trade_count(handle, figures.trades)
        self.figures.forget_all_but(h.name for h in handles)

    def _needs_status(self, handle: WorkerHandle, figures: LastFigures | None) -> bool:
        """Its heartbeat stores no figures, or it filled since the last look and a channel
        wants fills (the beat's trade count is at most a beat old; its fill is in `/status`)."""
        if figures is None:
            return True
        before = self._trades.get(handle.name)
        return (
            self.wants_fills
            and before is not None
            and _trade_count(handle, figures.trades) > before
        )

    def _fills(self, status: RunningStatus) -> None:
        """A fill event for the last trade when the trade count grew (fills are opt-in)."""
        before = self._trades.get(status.name)
        self._trades[status.name] = status.trades
        trade = status.last_trade
        if not self.wants_fills or before is None or status.trades <= before or trade is None:
            return
        event = Event.fill(status.name, trade.symbol, trade.side, trade.qty, trade.price)
        if status.trades - before > 1:
            event = Event.of(
                EventKind.FILL,
                status.name,
                symbol=trade.symbol,
                side=trade.side,
                qty=trade.qty,
                price=trade.price,
                fills=status.trades - before,
            )
        self.emit(event)

    async def aclose(self, drain_s: float = 5.0) -> None:
        """Stop watching, give queued messages `drain_s` to leave, close the channels."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.notifier.aclose(drain_s)


def _trade_count(handle: WorkerHandle, stored: int) -> int:
    """The trade count of its last beat, else of its stored figures."""
    return stored if handle.trades is None else handle.trades


class Collectors(Collector):
    """Several collectors registered as one (the control plane registers one object)."""

    def __init__(self, parts: Sequence[Collector]) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self._parts:
            yield from part.collect()
