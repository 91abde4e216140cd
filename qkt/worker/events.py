"""The worker's event ring and its bounded fan-out to live (SSE) subscribers.

Every event gets the next id (1, 2, 3, ... for the life of the process) and goes into a ring of
fixed capacity, where `/logs` pages through it and `/events` resumes from it (`Last-Event-ID`).
Each live subscriber has its own bounded queue: when a slow client falls behind, its oldest
undelivered events are dropped and counted, so publishing never waits for a reader and never
slows trading down.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

DEFAULT_CAPACITY: Final = 1000
DEFAULT_QUEUE: Final = 256  # events a live subscriber may fall behind before drops start


class EventKind(Enum):
    """What an event is about; the SSE `event:` name."""

    TRADE = "trade"
    SIGNAL = "signal"
    ORDER = "order"
    LOG = "log"
    CANDLE = "candle"
    RISK = "risk"  # a halt, resume, kill, or a daily-loss halt lifting (docs/risk.md)
    REJECTED = "order_rejected"  # an order refused: halted, a limit, or no buying power


# An event's JSON body, or what makes it when someone reads the event: most events of a candle
# are never read (nobody follows /events), and a thousand workers publish theirs at once.
Body = dict[str, Any] | Callable[[], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WorkerEvent:
    """One event: its id in the ring, kind, time (epoch ms) and JSON body."""

    id: int
    kind: EventKind
    ts: int
    body: Body

    @property
    def data(self) -> dict[str, Any]:
        """The JSON body (made now if it was published as a call)."""
        return self.body() if callable(self.body) else self.body

    def to_json(self) -> dict[str, Any]:
        """The body plus `event_id`, `type` and `ts` (a trade's own `id` is its fill id)."""
        return {"event_id": self.id, **self.data, "type": self.kind.value, "ts": self.ts}


class Subscription:
    """One live reader's bounded queue; iterate it with `await next_event()`."""

    def __init__(self, ring: EventRing, size: int) -> None:
        self._ring = ring
        self._queue: deque[WorkerEvent] = deque()
        self._size = size
        self._wake = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def push(self, event: WorkerEvent) -> None:
        """Queue `event`, dropping the oldest queued one if the reader is `size` behind."""
        if len(self._queue) >= self._size:
            self._queue.popleft()
            self.dropped += 1
            self._ring.dropped += 1
        self._queue.append(event)
        self._wake.set()

    async def next_event(self, timeout: float | None = None) -> WorkerEvent | None:
        """The next event; None on timeout or once closed and drained."""
        while not self._queue:
            if self.closed:
                return None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return None
        return self._queue.popleft()

    def close(self) -> None:
        """End the subscription: the reader gets what is queued, then None."""
        self.closed = True
        self._wake.set()
        self._ring.unsubscribe(self)


class EventRing:
    """The last `capacity` events, numbered, plus the live subscribers."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, queue_size: int = DEFAULT_QUEUE) -> None:
        if capacity < 1 or queue_size < 1:
            raise ValueError("event ring capacity and queue size must be at least 1")
        self._events: deque[WorkerEvent] = deque(maxlen=capacity)
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self._next_id = 1
        self.dropped = 0  # events dropped for slow subscribers, all of them together
        self.closed = False

    @property
    def last_id(self) -> int:
        """The id of the latest event (0 before the first)."""
        return self._next_id - 1

    @property
    def subscribers(self) -> int:
        """Live subscribers now."""
        return len(self._subscribers)

    def publish(self, kind: EventKind, data: Body, ts: int | None = None) -> WorkerEvent:
        """Number, keep and fan out one event (`ts` defaults to the wall clock); `data` is its
        JSON body or a call that makes it, made when the event is read. The call must give
        the same body whenever it is made (it reads immutable records)."""
        stamp = ts if ts is not None else int(time.time() * 1000)
        event = WorkerEvent(self._next_id, kind, stamp, data)
        self._next_id += 1
        self._events.append(event)
        for subscription in self._subscribers:
            subscription.push(event)
        return event

    def since(self, after: int = 0, limit: int | None = None) -> list[WorkerEvent]:
        """Events with an id above `after`, oldest first; with `limit`, the first `limit`."""
        found: list[WorkerEvent] = []
        for event in self._after(after):
            found.append(event)
            if limit is not None and len(found) >= limit:
                break
        return found

    def latest(self, limit: int) -> list[WorkerEvent]:
        """The last `limit` events, oldest first."""
        if limit <= 0:
            return []
        return list(self._events)[-limit:]

    def _after(self, after: int) -> Iterator[WorkerEvent]:
        # Ids are consecutive, so the first wanted one sits at a known offset in the ring.
        if not self._events:
            return iter(())
        start = max(0, after + 1 - self._events[0].id)
        return (self._events[i] for i in range(start, len(self._events)))

    def subscribe(self) -> Subscription:
        """A live subscription from now on (a closed ring gives one that is already closed)."""
        subscription = Subscription(self, self._queue_size)
        if self.closed:
            subscription.closed = True
        else:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscription (idempotent)."""
        self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every live subscription (on stop, so SSE responses finish)."""
        self.closed = True
        for subscription in list(self._subscribers):
            subscription.close()
