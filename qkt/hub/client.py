"""HubSubscriber: a hub's candles for some keys, snapshot and live stream stitched without gaps.

This is the ZeroMQ guide's clone pattern. For each key: subscribe first, and wait until the hub's
sync marker arrives on that topic (then the subscription has reached the hub, the slow joiner is
past); meanwhile buffer what comes. Then ask the snapshot socket for the last N candles and the
seq they end at, drop buffered candles at or below that seq, and go live. A seq that jumps ahead
is a gap (a full pipe dropped messages): repair it from the hub's history ring, and if the ring
no longer holds the candles, report the gap (callback, counter, log) rather than hide it.

Every subscriber owns its ZeroMQ context unless given one, so that a worker forked from a process
that holds a hub never touches a context created before the fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import zmq
import zmq.asyncio

from qkt.hub import wire
from qkt.hub.endpoints import HubEndpoints
from qkt.hub.errors import HubError, HubUnavailableError, UnknownKeyError, WireError
from qkt.hub.requester import SnapshotRequester
from qkt.hub.wire import SequencedCandle, SyncMarker
from qkt.market.models import CandleKey

log = logging.getLogger(__name__)

# Candles waiting for the consumer before the reader stops reading (ZeroMQ then buffers up to
# RCVHWM, then the hub drops, then gap repair fetches them back from the history ring).
DEFAULT_MAX_BUFFERED: Final = 10_000
RCVHWM: Final = 100_000
# Messages read off the socket in one go before the reader lets the consumer run. The reader is
# a callback on the socket's descriptor, not a task awaiting pyzmq's asyncio recv: a future, a
# task step and a failed non-blocking read per candle were most of a worker's cost to receive
# one, and a thousand workers receive the same minute's candle at once.
DRAIN_BATCH: Final = 256
_NOBLOCK: Final = int(zmq.NOBLOCK)  # an int: or-ing pyzmq's flag enum costs a call a read
_RCVMORE: Final = int(zmq.RCVMORE)
_LOGGED_MALFORMED: Final = 10  # log the first few bad frames, then one in every 1000


@dataclass(frozen=True, slots=True)
class Gap:
    """Candles of `key` (seqs `first_seq`..`last_seq` of `epoch`) that could not be recovered."""

    key: CandleKey
    first_seq: int
    last_seq: int
    epoch: int

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    """What a subscriber has seen so far."""

    delivered: int  # candles handed to the consumer, snapshot ones included
    duplicates: int  # dropped because their seq was already delivered
    buffered: int  # arrived while their key's snapshot was in flight
    repaired: int  # fetched from the history ring after a gap
    missed: int  # lost for good (reported as gaps)
    malformed: int  # frames that failed to decode (logged and skipped)


class _Phase(enum.Enum):
    SYNCING = "syncing"  # subscribed; waiting for the sync marker and the snapshot
    LIVE = "live"


@dataclass(slots=True)
class _Track:
    key: CandleKey
    topic: bytes
    synced: asyncio.Future[None]
    phase: _Phase = _Phase.SYNCING
    pending: deque[SequencedCandle] = field(default_factory=deque)
    epoch: int = 0
    last_seq: int = 0


class HubSubscriber:
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
            if self._failed is not None and self._failed.done():
                error = self._failed.exception()  # never None: only _fail completes it
                raise HubError(f"the hub subscriber's reader stopped: {error!r}") from error
            self._ready.clear()
            await self._ready.wait()
        item = self._out.popleft()
        if self._paused and len(self._out) < self._max_buffered // 2:
            self._paused = False
            self._pump_soon()
        return item

    async def aclose(self) -> None:
        """Stop reading and close both sockets without lingering."""
        if self._closed:
            return
        self._closed = True
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

    # -- the live stream ---------------------------------------------------------------------

    def _start_reader(self) -> None:
        if self._loop is None:
            self._loop = loop = asyncio.get_running_loop()
            self._failed = loop.create_future()
            # Its error reaches the consumer through __anext__ (or subscribe), not the loop's log.
            self._failed.add_done_callback(lambda failed: failed.exception())
            loop.add_reader(self._sub.FD, self._pump)

    def _pump_soon(self) -> None:
        # ZeroMQ's descriptor is edge-triggered: it signals when messages arrive, not while
        # some wait. Anything that may have left messages unread (a batch cut short, a paused
        # or repairing reader, a (un)subscription that let ZeroMQ process its queue) looks again.
        if self._loop is not None and not self._closed:
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        """Read and deliver what is queued on the socket, without waiting: up to DRAIN_BATCH
        messages, then again on the loop's next turn."""
        if self._closed:
            return
        try:
            if self._repairing is not None or self._stopped or self._pause_if_behind():
                # Not reading now (a repair or the consumer will call again); asking EVENTS
                # lets ZeroMQ take in what woke the descriptor, which would otherwise stay
                # readable and wake us again at once.
                self._sub.getsockopt(zmq.EVENTS)
                return
            recv = self._sub.recv
            for _ in range(DRAIN_BATCH):
                try:
                    topic = recv(_NOBLOCK)
                except zmq.Again:
                    return  # all read: the descriptor wakes us when more comes
                # The hub publishes [topic, payload] and ZeroMQ delivers a message's frames
                # together: both are read as they are, without asking the socket whether
                # more follow (a call that costs more than the two reads). A message of
                # another shape fails to decode, and _skip_rest finds the next one's start.
                try:
                    payload = recv(_NOBLOCK)
                except zmq.Again:
                    self._note_malformed(WireError("a message of one frame"), [topic])
                    return
                gap = self._take(topic, payload)
                if gap is not None:
                    assert self._loop is not None
                    self._repairing = self._loop.create_task(self._repair_then_read(*gap))
                    return
                if len(self._out) >= self._max_buffered and self._pause_if_behind():
                    return
        except Exception as error:
            self._fail(error)
            return
        self._pump_soon()

    def _pause_if_behind(self) -> bool:
        """Back-pressure: stop reading while the consumer is behind (ZeroMQ buffers, then the
        hub drops, then gap repair catches up), but never while a key waits for its sync
        marker, or subscribe() would time out behind an unread backlog."""
        if len(self._out) < self._max_buffered or self._any_syncing():
            return False
        self._paused = True
        return True

    async def _repair_then_read(self, track: _Track, item: SequencedCandle) -> None:
        try:
            await self._repair(track, item)
        except Exception as error:
            self._fail(error)
            return
        self._repairing = None
        self._pump()

    @property
    def _stopped(self) -> bool:
        return self._failed is not None and self._failed.done()

    def _fail(self, error: BaseException) -> None:
        """The reader stopped: the consumer and a waiting subscribe() hear why."""
        if self._loop is not None and not self._sub.closed:
            self._loop.remove_reader(self._sub.FD)
        if self._failed is not None and not self._failed.done():
            self._failed.set_exception(error)
        self._ready.set()

    def _any_syncing(self) -> bool:
        return any(track.phase is _Phase.SYNCING for track in self._tracks.values())

    def _take(self, topic: bytes, payload: bytes) -> tuple[_Track, SequencedCandle] | None:
        """Decode and deliver one message without waiting; (track, candle) if the candle comes
        after a gap that must be repaired first. Sync: this runs once a message."""
        try:
            message = wire.decode_message((topic, payload))
        except WireError as error:
            self._note_malformed(error, [topic, payload])
            self._skip_rest()
            return None
        track = self._tracks.get(topic)
        if track is None:
            return None  # unsubscribed meanwhile
        if not track.synced.done():
            track.synced.set_result(None)  # any message on the topic proves the subscription
        if isinstance(message, SyncMarker):
            return None
        if track.phase is _Phase.SYNCING:
            track.pending.append(message)
            self._buffered += 1
            return None
        return None if self._accept(track, message) else (track, message)

    def _skip_rest(self) -> None:
        """After a message that did not decode: drop the frames left of it, so that the next
        read starts a message. (A frame misread as a payload may have begun the message after
        a one-frame one: that one is dropped with it, and its seq's gap repaired.)"""
        while self._sub.getsockopt(_RCVMORE):
            self._sub.recv(_NOBLOCK)

    def _accept(self, track: _Track, item: SequencedCandle) -> bool:
        """Deliver `item` or drop it as a duplicate; False if a gap before it needs repair."""
        if item.epoch != track.epoch:
            if item.epoch < track.epoch:
                self._duplicates += 1  # from a life of the key that has ended
                return True
            log.info("%s restarted in the hub (new epoch); following it anew", track.key)
            track.epoch, track.last_seq = item.epoch, 0
        if item.seq <= track.last_seq:
            self._duplicates += 1
        elif item.seq == track.last_seq + 1:
            self._deliver(track, item)
        else:
            return False
        return True

    async def _repair(self, track: _Track, item: SequencedCandle) -> None:
        """Fill seqs last_seq+1 .. item.seq-1 from the history ring, or report them lost."""
        reply = await self._snapshots.ask(track.key, after_seq=track.last_seq)
        found: tuple[SequencedCandle, ...] = ()
        if reply is None:
            why = "the repair request timed out"
        elif reply.error is not None:
            why = f"the repair request failed: {reply.message}"
        elif reply.epoch != track.epoch:
            why = "the key restarted in the hub during the repair"
        else:
            why = "no longer in the hub's history"
            # Later candles in the reply will come on the stream too; keep this one last.
            found = tuple(c for c in reply.candles if c.seq < item.seq)
        for candle in (*found, item):
            if candle.seq <= track.last_seq:
                self._duplicates += 1
                continue
            if candle.seq > track.last_seq + 1:
                gap = Gap(track.key, track.last_seq + 1, candle.seq - 1, track.epoch)
                self._report_gap(gap, why)
            if candle is not item:
                self._repaired += 1
            self._deliver(track, candle)

    def _deliver(self, track: _Track, item: SequencedCandle) -> None:
        track.last_seq = item.seq
        self._out.append(item)
        self._delivered += 1
        self._ready.set()

    def _report_gap(self, gap: Gap, why: str) -> None:
        self._missed += gap.count
        log.warning(
            "%s lost %d candle(s), seq %d..%d: %s",
            gap.key,
            gap.count,
            gap.first_seq,
            gap.last_seq,
            why,
        )
        if self._on_gap is not None:
            try:
                self._on_gap(gap)
            except Exception:
                log.exception("the on_gap callback failed")

    def _note_malformed(self, error: WireError, frames: Sequence[bytes | memoryview]) -> None:
        self._malformed += 1
        if self._malformed <= _LOGGED_MALFORMED or self._malformed % 1000 == 0:
            preview = [bytes(f[:80]) for f in frames[:3]]
            log.warning(
                "malformed frame skipped (%s): %r [%d so far]", error, preview, self._malformed
            )
