"""The hub's PUB side: one XPUB socket that publishes frames and confirms every subscription."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import zmq

from qkt.hub import wire

log = logging.getLogger(__name__)

# Per subscriber. Closed candles are small (~250 bytes) and rare, but a burst (a replay, a
# speed-up simulation, many keys closing on the same minute) must not be dropped at the
# default of 1000; a subscriber that falls further behind repairs from the history ring.
DEFAULT_SNDHWM: Final = 100_000
_POLLIN: Final = int(zmq.POLLIN)
_SEND_MORE: Final = int(zmq.SNDMORE | zmq.NOBLOCK)
_SEND_LAST: Final = int(zmq.NOBLOCK)


class Publisher:
    """Owns the PUB socket: bind, `linger=0`, publish, and a sync marker for each subscription.

    It is an XPUB in verbose mode so that it sees every SUBSCRIBE, also a second one to the same
    topic. Answering each with a sync marker on that topic lets a subscriber know for certain
    that its subscription has reached us (ZeroMQ's slow joiner): it asks for its snapshot only
    after that, so nothing published after the snapshot can miss it.

    The socket is a plain one that the event loop drives by hand, not a zmq.asyncio socket:
    sending never waits (an XPUB drops for a full pipe instead), and the asyncio wrapper's
    future and event checks on every send were half of the hub's cost per candle.
    """

    def __init__(self, context: zmq.Context[Any], *, sndhwm: int = DEFAULT_SNDHWM) -> None:
        self._socket: zmq.Socket[bytes] = zmq.Socket(context, zmq.XPUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._look_scheduled = False
        self.endpoint = ""

    def bind(self, endpoint: str) -> str:
        """Bind `endpoint` (tcp port `*` allowed) and return the endpoint actually bound."""
        self._socket.bind(endpoint)
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.endpoint

    def start(self) -> None:
        """Start answering subscriptions (call from the running event loop)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._socket.FD, self._answer_subscriptions)
            self._look_soon()  # subscriptions that came before we watched the descriptor

    def send(self, frames: list[bytes]) -> None:
        """Publish one multipart message; never blocks (a full subscriber pipe drops)."""
        # Frame by frame with ready-made int flags: pyzmq's send_multipart checks each frame's
        # type and or-s its flag enums, which was a third of a candle's cost to publish.
        *head, last = frames
        send = self._socket.send
        with contextlib.suppress(zmq.Again):  # not raised by an XPUB; dropping is the contract
            for frame in head:
                send(frame, _SEND_MORE)
            send(last, _SEND_LAST)
        self._look_soon()

    def _look_soon(self) -> None:
        # ZeroMQ's descriptor is edge-triggered: a send may take in a subscription that has
        # just arrived, and then the descriptor does not become readable for it. So look for
        # pending subscriptions again after sends, once per turn of the loop.
        if not self._look_scheduled and self._loop is not None:
            self._look_scheduled = True
            self._loop.call_soon(self._answer_subscriptions)

    def _answer_subscriptions(self) -> None:
        self._look_scheduled = False
        try:
            while int(self._socket.getsockopt(zmq.EVENTS)) & _POLLIN:
                event = self._socket.recv_multipart(zmq.NOBLOCK)[0]
                # \x01 + topic is a subscribe, \x00 + topic an unsubscribe; only full candle
                # topics get a marker (a monitor subscribing to the prefix `candle.` needs none).
                if event[:1] == b"\x01" and wire.is_candle_topic(event[1:]):
                    with contextlib.suppress(zmq.Again):
                        self._socket.send_multipart(wire.encode_sync(event[1:]), zmq.NOBLOCK)
        except zmq.ZMQError as error:
            if not self._socket.closed:
                log.error("the hub's PUB socket failed: %s", error)

    async def aclose(self) -> None:
        """Stop answering and close the socket without lingering."""
        if self._loop is not None and not self._socket.closed:
            self._loop.remove_reader(self._socket.FD)
        self._loop = None
        self._socket.close(linger=0)
