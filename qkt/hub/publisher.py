"""The hub's PUB side: one XPUB socket that publishes frames and confirms every subscription."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import zmq
import zmq.asyncio

from qkt.hub import wire

log = logging.getLogger(__name__)

# Per subscriber. Closed candles are small (~250 bytes) and rare, but a burst (a replay, a
# speed-up simulation, many keys closing on the same minute) must not be dropped at the
# default of 1000; a subscriber that falls further behind repairs from the history ring.
DEFAULT_SNDHWM: Final = 100_000


class Publisher:
    """Owns the PUB socket: bind, `linger=0`, publish, and a sync marker for each subscription.

    It is an XPUB in verbose mode so that it sees every SUBSCRIBE, also a second one to the same
    topic. Answering each with a sync marker on that topic lets a subscriber know for certain
    that its subscription has reached us (ZeroMQ's slow joiner): it asks for its snapshot only
    after that, so nothing published after the snapshot can miss it.
    """

    def __init__(self, context: zmq.asyncio.Context, *, sndhwm: int = DEFAULT_SNDHWM) -> None:
        self._socket = context.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._task: asyncio.Task[None] | None = None
        self.endpoint = ""

    def bind(self, endpoint: str) -> str:
        """Bind `endpoint` (tcp port `*` allowed) and return the endpoint actually bound."""
        self._socket.bind(endpoint)
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.endpoint

    def start(self) -> None:
        """Start answering subscriptions (call from the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._answer_subscriptions(), name="hub-publisher-subscriptions"
            )

    async def send(self, frames: list[bytes]) -> None:
        """Publish one multipart message; never blocks (a full subscriber pipe drops)."""
        await self._socket.send_multipart(frames)

    async def _answer_subscriptions(self) -> None:
        while True:
            frames = await self._socket.recv_multipart()
            event = frames[0]
            # \x01 + topic is a subscribe, \x00 + topic an unsubscribe; only full candle
            # topics get a marker (a monitor subscribing to the prefix `candle.` needs none).
            if event[:1] != b"\x01" or not wire.is_candle_topic(event[1:]):
                continue
            await self.send(wire.encode_sync(event[1:]))

    async def aclose(self) -> None:
        """Stop answering and close the socket without lingering."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._socket.close(linger=0)
