"""HubSubscriber: a hub's candles for some keys, snapshot and live stream stitched without gaps.

This is the ZeroMQ guide's clone pattern. For each key: subscribe first, and wait until the hub's
sync marker arrives on that topic (then the subscription has reached the hub, the slow joiner is
past); meanwhile buffer what comes. Then ask the snapshot socket for the last N candles and the
seq they end at, drop buffered candles at or below that seq, and go live. A seq that jumps ahead
is a gap (a full pipe dropped messages): repair it from the hub's history ring, and if the ring
no longer holds the candles, report the gap (callback, counter, log) rather than hide it.

Every subscriber owns its ZeroMQ context unless given one, so that a worker forked from a process
that holds a hub never touches a context created before the fork. The per-message reading, seq
checks and gap repair are `SubscriberReader`'s (reader.py), which this class builds on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

import zmq
import zmq.asyncio

from qkt.hub import wire
from qkt.hub.endpoints import HubEndpoints
from qkt.hub.errors import HubError, HubUnavailableError, UnknownKeyError
from qkt.hub.reader import Gap as Gap
from qkt.hub.reader import SubscriberReader, _Phase, _Track
from qkt.hub.requester import SnapshotRequester
from qkt.hub.wire import SequencedCandle
from qkt.market.models import CandleKey

# Candles waiting for the consumer before the reader stops reading (ZeroMQ then buffers up to
# RCVHWM, then the hub drops, then gap repair fetches them back from the history ring).
DEFAULT_MAX_BUFFERED: Final = 10_000
RCVHWM: Final = 100_000


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    """What a subscriber has seen so far."""

    delivered: int  # candles handed to the consumer, snapshot ones included
    duplicates: int  # dropped because their seq was already delivered
    buffered: int  # arrived while their key's snapshot was in flight
    repaired: int  # fetched from the history ring after a gap
    missed: int  # lost for good (reported as gaps)
    malformed: int  # frames that failed to decode (logged and skipped)


class HubSubscriber(SubscriberReader):
    """Connects to a hub's PUB and snapshot sockets; iterate it for `SequencedCandle`s."""

    def __init__(
        self,
        endpoints: HubEndpoints,
        *,
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = 5.0,
        on_gap: Callable[[Gap], None] | None = None,
        context: zmq.asyncio.Context | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        self._endpoints = endpoints
        self._connect_timeout_s = connect_timeout_s
        self._on_gap = on_gap
        self._max_buffered = max_buffered
        self._own_context = context is None
        self._context = context if context is not None else zmq.asyncio.Context()
        # A plain socket: the event loop watches its descriptor (see _pump).
        self._sub: zmq.Socket[bytes] = zmq.Socket(self._context, zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.RCVHWM, RCVHWM)
        self._sub.connect(endpoints.pub)
        self._snapshots = SnapshotRequester(
            self._context, endpoints.snapshot, request_timeout_s, self._note_malformed
        )
        self._tracks: dict[bytes, _Track] = {}
        self._out: deque[SequencedCandle] = deque()
        self._ready = asyncio.Event()  # something to deliver, or the reader stopped
        self._loop: asyncio.AbstractEventLoop | None = None  # set when the reader starts
        self._failed: asyncio.Future[None] | None = None  # done when the reader stopped on an error
        self._paused = False  # the consumer is behind: read again once it caught up
        self._repairing: asyncio.Task[None] | None = None  # reading waits for a gap's repair
        self._closed = False
        self._consumer: Callable[[SequencedCandle], None] | None = None  # see consume()
        self._consuming: asyncio.Future[None] | None = None  # done when consume() ends
        self._delivered = self._duplicates = self._buffered = 0
        self._repaired = self._missed = self._malformed = 0

    # -- public API --------------------------------------------------------------------------

    async def subscribe(self, keys: Iterable[CandleKey], warmup: int = 0) -> None:
        """Follow `keys`, first delivering up to `warmup` past candles of each from the hub.

        Raises HubUnavailableError if no hub confirms within the connect timeout, and
        UnknownKeyError if the hub does not carry a key. Keys already followed are left alone.
        """
        if self._closed:
            raise HubError("subscribe on a closed HubSubscriber")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        loop = asyncio.get_running_loop()
        new: list[_Track] = []
        for key in dict.fromkeys(keys):
            topic = wire.topic(key)
            if topic not in self._tracks:
                track = _Track(key, topic, loop.create_future())
                self._tracks[topic] = track
                new.append(track)
                self._sub.subscribe(topic)
        if not new:
            return
        self._start_reader()
        self._pump_soon()  # a reader paused on a full backlog must see the sync markers
        try:
            await self._await_synced(new)
            for track in new:
                await self._load_snapshot(track, warmup)
        except BaseException:
            self._forget(t for t in new if t.phase is _Phase.SYNCING)
            raise
        if self._consumer is not None:
            self._hand_over()  # the new keys' snapshots, to a consumer already taking candles

    def unsubscribe(self, keys: Iterable[CandleKey]) -> None:
        """Stop following `keys` (candles already queued are still delivered)."""
        self._forget(t for t in (self._tracks.get(wire.topic(k)) for k in keys) if t is not None)
        self._pump_soon()

    def stats(self) -> SubscriberStats:
        """Counters of what this subscriber has seen."""
        return SubscriberStats(
            delivered=self._delivered,
            duplicates=self._duplicates,
            buffered=self._buffered,
            repaired=self._repaired,
            missed=self._missed,
            malformed=self._malformed,
        )

    def __aiter__(self) -> HubSubscriber:
        return self

    async def __anext__(self) -> SequencedCandle:
        while not self._out:
            if self._closed:
                raise StopAsyncIteration
            self._raise_if_stopped()
            self._ready.clear()
            await self._ready.wait()
        item = self._out.popleft()
        if self._paused and len(self._out) < self._max_buffered // 2:
            self._paused = False
            self._pump_soon()
        return item

    async def consume(self, consumer: Callable[[SequencedCandle], None]) -> None:
        """Call `consumer` with every candle, in order, as the reader reads it (what is
        already queued first), until the subscriber is closed. The alternative to `async for`
        for a consumer that handles a candle at once: it runs in the reader's own callback, so
        a candle costs no task step (a thousand workers receive the same minute's candle).
        Raises what `consumer` raised (no candle is handed to it after that), or HubError if
        the reader stopped."""
        if self._consuming is not None:
            raise HubError("this subscriber already has a consumer")
        self._raise_if_stopped()
        if self._closed:
            return
        done = self._consuming = asyncio.get_running_loop().create_future()
        self._consumer = consumer
        try:
            self._hand_over()
            await done
        finally:
            self._consumer = self._consuming = None

    async def aclose(self) -> None:
        """Stop reading and close both sockets without lingering."""
        if self._closed:
            return
        self._closed = True
        self._end_consuming(None)
        if self._repairing is not None:
            self._repairing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._repairing
        if self._loop is not None:
            self._loop.remove_reader(self._sub.FD)
        self._sub.close(linger=0)
        self._snapshots.close()
        if self._own_context:
            self._context.term()
        self._ready.set()

    async def __aenter__(self) -> HubSubscriber:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- subscribing -------------------------------------------------------------------------

    async def _await_synced(self, tracks: list[_Track]) -> None:
        assert self._failed is not None
        waiting: asyncio.Future[list[None]] = asyncio.gather(
            *(asyncio.shield(track.synced) for track in tracks)
        )
        watched: set[asyncio.Future[Any]] = {waiting, self._failed}
        done, _ = await asyncio.wait(
            watched,
            timeout=self._connect_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if waiting in done:
            return
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        if self._failed in done:
            raise HubError(f"the hub subscriber's reader stopped: {self._failed.exception()!r}")
        raise HubUnavailableError(
            f"no CandleHub answered at {self._endpoints.pub} within "
            f"{self._connect_timeout_s:g} s (is the daemon running?)"
        )

    async def _load_snapshot(self, track: _Track, warmup: int) -> None:
        reply = await self._snapshots.ask(track.key, after_seq=0, limit=warmup)
        if reply is None:
            raise HubUnavailableError(
                f"the CandleHub at {self._endpoints.snapshot} did not answer a snapshot request "
                f"for {track.key} within {self._snapshots.timeout_s:g} s"
            )
        if reply.error == "unknown_key":
            raise UnknownKeyError(reply.message or f"the hub does not carry {track.key}")
        if reply.error is not None:
            raise HubError(f"snapshot request for {track.key} failed: {reply.message}")
        track.epoch = reply.epoch
        track.last_seq = reply.candles[0].seq - 1 if reply.candles else reply.seq
        for item in reply.candles:
            self._deliver(track, replace(item, snapshot=True))
        track.last_seq = max(track.last_seq, reply.seq)
        # Stitch: what arrived while the snapshot was in flight, in order; seq <= the
        # snapshot's is dropped as a duplicate. No await between the empty check and LIVE.
        while track.pending:
            item = track.pending.popleft()
            if not self._accept(track, item):
                await self._repair(track, item)
        track.phase = _Phase.LIVE

    def _forget(self, tracks: Iterable[_Track]) -> None:
        for track in list(tracks):
            if self._tracks.pop(track.topic, None) is not None and not self._closed:
                self._sub.unsubscribe(track.topic)
            track.synced.cancel()
