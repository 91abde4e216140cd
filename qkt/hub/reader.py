"""SubscriberReader: the reading half of `HubSubscriber`, the code that runs once a message.

It reads the SUB socket from a callback on the socket's descriptor, checks each candle's seq
against its key's track (deliver it, drop a duplicate, or repair a gap from the hub's history
ring and report what cannot be recovered as a `Gap`), and stops reading while the consumer is
behind. `HubSubscriber` (client.py) builds on it with the sockets, subscribing and the public
API; the reader is its own module so that the tuned per-message path reads as one piece.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import zmq

from qkt.hub import wire
from qkt.hub.errors import HubError, WireError
from qkt.hub.requester import SnapshotRequester
from qkt.hub.wire import SequencedCandle, SyncMarker
from qkt.market.models import CandleKey

# The subscriber's logger, by the name it always had: it shows in every worker's log lines.
log = logging.getLogger("qkt.hub.client")

# Messages read off the socket in one go before the reader lets the consumer run. The reader is
# a callback on the socket's descriptor, not a task awaiting pyzmq's asyncio recv: a future, a
# task step and a failed non-blocking read per candle were most of a worker's cost to receive
# one, and a thousand workers receive the same minute's candle at once.
DRAIN_BATCH: Final = 256
_NOBLOCK: Final = int(zmq.NOBLOCK)  # an int: or-ing pyzmq's flag enum costs a call a read
_RCVMORE: Final = int(zmq.RCVMORE)
_EVENTS: Final = int(zmq.EVENTS)
_POLLIN: Final = int(zmq.POLLIN)
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


def stopped_error(error: BaseException) -> HubError:
    """What the consumer hears when the reader stopped on `error`."""
    stopped = HubError(f"the hub subscriber's reader stopped: {error!r}")
    stopped.__cause__ = error
    return stopped


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


class SubscriberReader:
    """Reads, checks and delivers a hub's candles; `HubSubscriber` is the one class built on it."""

    # Set by HubSubscriber.__init__ (declared here for the type checker).
    _sub: zmq.Socket[bytes]
    _snapshots: SnapshotRequester
    _on_gap: Callable[[Gap], None] | None
    _max_buffered: int
    _tracks: dict[bytes, _Track]
    _out: deque[SequencedCandle]
    _ready: asyncio.Event
    _loop: asyncio.AbstractEventLoop | None
    _failed: asyncio.Future[None] | None
    _paused: bool
    _repairing: asyncio.Task[None] | None
    _closed: bool
    _consumer: Callable[[SequencedCandle], None] | None
    _consuming: asyncio.Future[None] | None
    _delivered: int
    _duplicates: int
    _buffered: int
    _repaired: int
    _missed: int
    _malformed: int

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
        messages, then again on the loop's next turn; with a consumer (`consume`), hand it
        what was read before returning."""
        self._read()
        if self._consumer is not None:
            self._hand_over()

    def _hand_over(self) -> None:
        """Call the consumer with each delivered candle, in order, in this callback: no task
        step and no future per candle. A consumer that raises ends `consume` with its error."""
        out = self._out
        while out and (consumer := self._consumer) is not None:
            try:
                consumer(out.popleft())
            except Exception as error:
                self._end_consuming(error)
                return
        if self._paused:
            self._paused = False
            self._pump_soon()

    def _end_consuming(self, error: BaseException | None) -> None:
        """`consume` returns (None: closed) or raises `error`; no candle is handed over after."""
        self._consumer = None
        done = self._consuming
        if done is not None and not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def _read(self) -> None:
        if self._closed:
            return
        try:
            if self._repairing is not None or self._stopped or self._pause_if_behind():
                # Not reading now (a repair or the consumer will call again); asking EVENTS
                # lets ZeroMQ take in what woke the descriptor, which would otherwise stay
                # readable and wake us again at once.
                self._sub.getsockopt(_EVENTS)
                return
            recv, ask = self._sub.recv, self._sub.getsockopt
            for _ in range(DRAIN_BATCH):
                # Asked, not tried: a read of an empty socket raises zmq.Again, an exception
                # made in Python that cost a cold worker ~35 us a candle (docs/performance.md).
                # Asking EVENTS also takes in what woke the descriptor, as a read would.
                if not int(ask(_EVENTS)) & _POLLIN:
                    return  # all read: the descriptor wakes us when more comes
                try:
                    topic = recv(_NOBLOCK)
                except zmq.Again:  # not after a POLLIN, but a refused read must not end us
                    return
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

    def _raise_if_stopped(self) -> None:
        """HubError if the reader stopped on an error (the consumer must hear why)."""
        if self._stopped:
            assert self._failed is not None
            error = self._failed.exception()  # never None: only _fail completes it
            assert error is not None
            raise stopped_error(error)

    def _fail(self, error: BaseException) -> None:
        """The reader stopped: the consumer and a waiting subscribe() hear why."""
        if self._loop is not None and not self._sub.closed:
            self._loop.remove_reader(self._sub.FD)
        if self._failed is not None and not self._failed.done():
            self._failed.set_exception(error)
        self._ready.set()
        self._end_consuming(stopped_error(error))

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
