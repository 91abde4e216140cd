"""Snapshots: a bounded history ring per key and the ROUTER socket that answers from it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Final

import zmq
import zmq.asyncio

from qkt.hub import wire
from qkt.hub.errors import WireError
from qkt.hub.wire import SequencedCandle, SnapshotReply
from qkt.market.models import Candle, CandleKey

log = logging.getLogger(__name__)

DEFAULT_HISTORY: Final = 2000


class HistoryRing:
    """One key's stream in this hub: numbers candles 1, 2, 3, ... and keeps the last `capacity`."""

    def __init__(self, capacity: int, epoch: int) -> None:
        if capacity < 1:
            raise ValueError(f"history capacity must be >= 1, got {capacity}")
        self._items: deque[SequencedCandle] = deque(maxlen=capacity)
        self.capacity = capacity
        self.epoch = epoch
        self.seq = 0  # the seq of the latest candle; 0 before the first

    def __len__(self) -> int:
        return len(self._items)

    def grow(self, capacity: int) -> None:
        """Keep at least `capacity` candles from now on (a holder asked for more history)."""
        if capacity > self.capacity:
            self._items = deque(self._items, maxlen=capacity)
            self.capacity = capacity

    def add(self, candle: Candle) -> SequencedCandle:
        """Number `candle` with the next seq, remember it (dropping the oldest) and return it."""
        self.seq += 1
        item = wire.sequenced(candle, self.seq, self.epoch)
        self._items.append(item)
        return item

    def since(self, after_seq: int, limit: int | None = None) -> tuple[SequencedCandle, ...]:
        """Candles with seq > `after_seq` still held, the last `limit` of them (None: all)."""
        if not self._items:
            return ()
        first = self._items[0].seq
        start = max(0, after_seq - first + 1)
        if limit is not None:
            start = max(start, len(self._items) - limit)
        return tuple(islice(self._items, start, None))

    def reply(self, request: wire.SnapshotRequest) -> SnapshotReply:
        """The answer to `request` as of now."""
        return SnapshotReply(
            request_id=request.request_id,
            key=request.key,
            epoch=self.epoch,
            seq=self.seq,
            candles=self.since(request.after_seq, request.limit),
        )


RingLookup = Callable[[CandleKey], HistoryRing | None]
HoldLookup = Callable[[CandleKey], asyncio.Event | None]  # set when the key's ring is filled
DEFAULT_HOLD_S: Final = 3.0  # well inside a subscriber's 5 s snapshot timeout


class SnapshotResponder:
    """Owns the ROUTER socket answering "the last N candles of K" and "K after seq S"."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        lookup: RingLookup,
        hold: HoldLookup | None = None,
        hold_s: float = DEFAULT_HOLD_S,
    ) -> None:
        self._socket = context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._lookup = lookup
        self._hold = hold
        self._hold_s = hold_s
        self._task: asyncio.Task[None] | None = None
        self._later: set[asyncio.Task[None]] = set()
        self.endpoint = ""

    def bind(self, endpoint: str) -> str:
        """Bind `endpoint` (tcp port `*` allowed) and return the endpoint actually bound."""
        self._socket.bind(endpoint)
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.endpoint

    def start(self) -> None:
        """Start serving requests (call from the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._serve(), name="hub-snapshot-responder"
            )

    def answer(self, frame: bytes) -> bytes | None:
        """The reply frame to one request frame (None when it cannot even be addressed)."""
        try:
            request = wire.decode_request(frame)
        except WireError as error:
            request_id = wire.request_id_of(frame)
            log.warning("bad snapshot request (%s): %r", error, frame[:200])
            if request_id is None:
                return None
            return wire.encode_reply(
                SnapshotReply(
                    request_id,
                    key=None,
                    epoch=0,
                    seq=0,
                    error="bad_request",
                    message=str(error),
                )
            )
        ring = self._lookup(request.key)
        if ring is None:
            return wire.encode_reply(
                SnapshotReply(
                    request.request_id,
                    request.key,
                    epoch=0,
                    seq=0,
                    error="unknown_key",
                    message=f"the hub does not carry {request.key} (nobody acquired it)",
                )
            )
        return wire.encode_reply(ring.reply(request))

    async def _serve(self) -> None:
        while True:
            frames = await self._socket.recv_multipart()
            # A DEALER's request arrives as [identity, payload].
            if len(frames) != 2:
                log.warning("snapshot request with %d frames ignored", len(frames))
                continue
            filling = self._filling(frames[1])
            if filling is not None:
                # The key's history is still being fetched: answer once it is in the ring (or
                # after `hold_s`, with what is there), without holding up other requests.
                task = asyncio.get_running_loop().create_task(self._answer_later(frames, filling))
                self._later.add(task)
                task.add_done_callback(self._later.discard)
                continue
            reply = self.answer(frames[1])
            if reply is not None:
                await self._socket.send_multipart([frames[0], reply])

    def _filling(self, frame: bytes) -> asyncio.Event | None:
        if self._hold is None:
            return None
        try:
            key = wire.decode_request(frame).key
        except WireError:
            return None
        event = self._hold(key)
        return None if event is None or event.is_set() else event

    async def _answer_later(self, frames: list[bytes], filled: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(filled.wait(), self._hold_s)
        reply = self.answer(frames[1])
        if reply is not None:
            await self._socket.send_multipart([frames[0], reply])

    async def aclose(self) -> None:
        """Stop serving and close the socket without lingering."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._later):
            task.cancel()
        self._socket.close(linger=0)
