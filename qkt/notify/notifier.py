"""`Notifier`: the one object the daemon holds: `publish(event)` fans out to every channel.

config = load_notify_config(config_file, os.environ, state.root)   # at start: bad -> refuse
notifier = Notifier(config)
await notifier.start(actions=ops, summary=day_figures)  # in the daemon's loop
notifier.publish(Event.crash("alpha", -9, tail))  # from the loop or any thread; never blocks
notifier.health()                                  # per-channel ChannelHealth for status
registry.register(notifier.collector())            # prometheus /metrics
await notifier.aclose()                            # drains for a few seconds, then stops
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from qkt.notify.channel import Channel, ChannelHealth, Sleep
from qkt.notify.commands import CommandHandler, OperatorActions
from qkt.notify.config import NotifyConfig, TelegramConfig
from qkt.notify.events import Event
from qkt.notify.metrics import NotifyCollector
from qkt.notify.poller import TelegramPoller, offset_path
from qkt.notify.summary import Clock, DaySummary, SummaryScheduler, utc_now

log = logging.getLogger("qkt.notify")


def quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and a URL may hold a bot token or a webhook key."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Notifier:
    """Every configured channel's queue and sender; safe to call from anywhere, never raises."""

    def __init__(
        self,
        config: NotifyConfig,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self.channels = tuple(Channel(c, self._client, sleep) for c in config.channels)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()  # the loop's thread, once started
        self._tasks: list[asyncio.Task[None]] = []
        self.lost = 0  # events publish() could not queue (logged, never raised)
        self.scheduler: SummaryScheduler | None = None
        quiet_http_logs()

    async def start(
        self,
        *,
        actions: OperatorActions | None = None,
        summary: Callable[[dt.date], DaySummary] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """Start one sender task per channel on the running loop; with `actions`, a command
        poller per `commands = true` Telegram channel; with `summary` (the day's figures) and
        `summary_at` configured, the daily summary."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        for channel in self.channels:
            self._spawn(channel.run(), f"notify-{channel.config.name}")
        for config in self.config.channels:
            if not (isinstance(config, TelegramConfig) and config.commands):
                continue
            if actions is None or self.config.state_dir is None:
                log.warning("notify telegram %s: commands are on but not served", config.name)
                continue
            offsets = offset_path(self.config.state_dir, config.name)
            poller = TelegramPoller(config, CommandHandler(actions), offsets, self._client)
            self._spawn(poller.run(), f"notify-{config.name}-commands")
        if summary is not None and self.config.summary_at is not None:
            self.scheduler = SummaryScheduler(self.config.summary_at, summary, self.publish, clock)
            self._spawn(self.scheduler.run(), "notify-summary")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    def publish(self, event: Event) -> None:
        """Queue `event` for every channel subscribed to its kind. Never blocks, never raises."""
        try:
            loop = self._loop
            if loop is not None and threading.get_ident() != self._thread:
                loop.call_soon_threadsafe(self._offer, event)
            else:
                self._offer(event)
        except Exception:
            self.lost += 1
            log.exception("notify: could not queue an event")

    def _offer(self, event: Event) -> None:
        for channel in self.channels:
            try:
                channel.offer(event)
            except Exception:
                self.lost += 1
                log.exception("notify channel %s: could not queue", channel.config.name)

    def health(self) -> tuple[ChannelHealth, ...]:
        """Each channel's state and counters."""
        return tuple(channel.health() for channel in self.channels)

    def collector(self) -> NotifyCollector:
        """A prometheus collector over `health()` (register it in the daemon's registry)."""
        return NotifyCollector(self.health)

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every queue is empty and nothing is in flight; False on timeout.
        (What the flood gate holds leaves when its window ends, or at `aclose`.)"""
        try:
            async with asyncio.timeout(timeout_s):
                for channel in self.channels:
                    await channel.wait_idle()
        except TimeoutError:
            return False
        return True

    async def aclose(self, drain_s: float = 5.0) -> None:
        """Give queued messages `drain_s` to leave (the daemon's stop message), then stop."""
        if self._tasks and drain_s > 0:
            for channel in self.channels:
                channel.open_gate()
            await self.flush(drain_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._own_client:
            await self._client.aclose()
