"""The subscriber's side of the snapshot socket: one DEALER, one request in flight at a time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence

import zmq
import zmq.asyncio

from qkt.hub import wire
from qkt.hub.errors import WireError
from qkt.hub.wire import SnapshotReply, SnapshotRequest
from qkt.market.models import CandleKey

MalformedHook = Callable[[WireError, Sequence[bytes | memoryview]], None]


class SnapshotRequester:
    """Asks a hub's ROUTER for candles of a key; replies are matched to requests by id."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        endpoint: str,
        timeout_s: float,
        on_malformed: MalformedHook,
    ) -> None:
        self._socket = context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
        self.timeout_s = timeout_s
        self._on_malformed = on_malformed
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self.endpoint = endpoint

    async def ask(
        self, key: CandleKey, *, after_seq: int = 0, limit: int | None = None
    ) -> SnapshotReply | None:
        """The candles of `key` after `after_seq` (the last `limit`); None if no reply in time."""
        request = SnapshotRequest(next(self._ids), key, after_seq, limit)
        loop = asyncio.get_running_loop()
        async with self._lock:
            await self._socket.send(wire.encode_request(request))
            deadline = loop.time() + self.timeout_s
            while (remaining := deadline - loop.time()) > 0:
                try:
                    frame = await asyncio.wait_for(self._socket.recv(), remaining)
                except TimeoutError:
                    break
                try:
                    reply = wire.decode_reply(frame)
                except WireError as error:
                    self._on_malformed(error, [frame])
                    continue
                if reply.request_id == request.request_id:
                    return reply
                # Otherwise a late answer to a request we gave up on: skip it.
        return None

    def close(self) -> None:
        """Close the socket without lingering."""
        self._socket.close(linger=0)
