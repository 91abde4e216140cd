"""One channel's sender task: gather a flood, send, retry with backoff, give up and say so.

The daemon's side only ever calls `offer` (a dict update, never an await), so a dead or hanging
receiver costs the daemon nothing; everything slow happens in `run`, a task of its own.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from qkt.notify.config import ChannelConfig
from qkt.notify.events import Event
from qkt.notify.pending import Digest, FloodGate, Pending, fold
from qkt.notify.senders import Answer, send

log = logging.getLogger("qkt.notify")

Sleep = Callable[[float], Awaitable[None]]


class ChannelState(enum.Enum):
    """`ok`: the last message went through; `retrying`: in backoff; `failing`: gave up on one."""

    OK = "ok"
    RETRYING = "retrying"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """A channel's counters and state, for `qkt daemon status` and `/metrics` (no secrets)."""

    name: str
    kind: str
    state: ChannelState
    sent: int  # messages delivered
    failed: int  # delivery attempts that failed
    dropped: int  # events given up on (retry budget spent, or queue full)
    coalesced: int  # events delivered inside another event's message
    pending: int  # events waiting
    last_error: str | None
    last_error_ms: int | None
    last_sent_ms: int | None

    def to_json(self) -> dict[str, object]:
        """For a status answer: plain values, the state as its name."""
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "coalesced": self.coalesced,
            "pending": self.pending,
            "last_error": self.last_error,
            "last_error_ms": self.last_error_ms,
            "last_sent_ms": self.last_sent_ms,
        }


class Channel:
    """The queue and sender of one configured channel."""

    def __init__(
        self, config: ChannelConfig, client: httpx.AsyncClient, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.config = config
        self._client = client
        self._sleep = sleep
        self._pending = Pending()
        self._gate = FloodGate(config.delivery.flood_s, config.delivery.flood_burst)
        self._batch: list[Digest] = []  # taken from the queue, being delivered
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._state = ChannelState.OK
        self._sent = self._failed = self._dropped = self._coalesced = 0
        self._last_error: str | None = None
        self._last_error_ms: int | None = None
        self._last_sent_ms: int | None = None

    def offer(self, event: Event) -> None:
        """Queue `event` if this channel subscribed to its kind. Never blocks."""
        if not self.config.wants(event.kind):
            return
        self._pending.add(event)
        self._idle.clear()
        self._wake.set()

    def health(self) -> ChannelHealth:
        return ChannelHealth(
            self.config.name,
            self.config.kind,
            self._state,
            self._sent,
            self._failed,
            self._dropped + self._pending.dropped,
            self._coalesced,
            self._pending.events() + sum(d.count for d in self._batch),
            self._last_error,
            self._last_error_ms,
            self._last_sent_ms,
        )

    async def wait_idle(self) -> None:
        """Return once nothing is queued or in flight (held by the flood gate counts as queued)."""
        await self._idle.wait()

    def open_gate(self) -> None:
        """Send what the flood gate holds now, without waiting for its window (shutdown)."""
        self._gate.open = True
        self._wake.set()

    async def _work(self) -> None:
        """Return once a queued digest may go: wait for events, or for the flood gate."""
        while True:
            waits = [self._gate.wait_s(kind) for kind in self._pending.kinds()]
            if waits and min(waits) == 0:
                return
            # Nothing can go: no await since the check, so clearing cannot lose an offer.
            self._wake.clear()
            try:
                async with asyncio.timeout(min(waits) if waits else None):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def run(self) -> None:
        """Send forever (until cancelled): wait for events, let a flood gather, deliver."""
        while True:
            await self._work()
            if self.config.delivery.coalesce_s > 0:
                await self._sleep(self.config.delivery.coalesce_s)
            self._wake.clear()
            self._batch = self._pending.take(self._gate.ready)
            try:
                await self._deliver()
            except Exception:
                # A bug here must not end the channel; the traceback holds no secret (no URL).
                log.exception("notify channel %s: delivery failed unexpectedly", self.config.name)
                self._dropped += sum(d.count for d in self._batch)
                self._batch = []
            if not self._pending:
                self._idle.set()

    async def _deliver(self) -> None:
        """Send `self._batch` front to back (it stays countable in `health()` meanwhile)."""
        batch = self._batch
        attempt = 0
        while batch:
            digest = batch[0]
            answer = await send(self.config, self._client, digest)
            if answer.ok:
                batch.pop(0)
                attempt = 0
                self._on_sent(digest)
                continue
            attempt += 1
            self._on_failed(answer)
            if answer.permanent or attempt > self.config.delivery.retries:
                self._give_up(batch, answer, attempt)
                return
            self._state = ChannelState.RETRYING
            await self._sleep(self._backoff(attempt, answer))
            # What arrived during the backoff joins this batch: an outage's flood stays one message.
            self._wake.clear()
            fold(batch, self._pending.take(self._gate.ready))

    def _backoff(self, attempt: int, answer: Answer) -> float:
        if answer.retry_after_s is not None:
            return answer.retry_after_s
        delivery = self.config.delivery
        return float(min(delivery.backoff_s * 2 ** (attempt - 1), delivery.backoff_max_s))

    def _on_sent(self, digest: Digest) -> None:
        self._gate.sent(digest.kind)
        self._sent += 1
        self._coalesced += digest.count - 1
        self._last_sent_ms = time.time_ns() // 1_000_000
        if self._state is not ChannelState.OK:
            log.info("notify channel %s: delivering again", self.config.name)
        self._state = ChannelState.OK

    def _on_failed(self, answer: Answer) -> None:
        self._failed += 1
        self._last_error = answer.detail
        self._last_error_ms = time.time_ns() // 1_000_000

    def _give_up(self, batch: list[Digest], answer: Answer, attempts: int) -> None:
        lost = sum(d.count for d in batch)
        self._dropped += lost
        batch.clear()
        self._state = ChannelState.FAILING
        why = "refused" if answer.permanent else f"failed {attempts} times"
        log.warning(
            "notify channel %s (%s): %s (%s); dropped %d event(s)",
            self.config.name,
            self.config.kind,
            why,
            answer.detail,
            lost,
        )
