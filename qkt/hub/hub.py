"""The CandleHub: ref-counted candle keys over per-broker feeds, fanned out on ZeroMQ."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import zmq
import zmq.asyncio

from qkt.hub import wire
from qkt.hub.endpoints import HubEndpoints, Transport, claim_ipc_path, ipc_path, plan_endpoints
from qkt.hub.errors import HubError
from qkt.hub.publisher import DEFAULT_SNDHWM, Publisher
from qkt.hub.snapshot import DEFAULT_HISTORY, HistoryRing, SnapshotResponder
from qkt.market.feed import CandleFeed
from qkt.market.models import Candle, CandleKey
from qkt.paths import StateDir

log = logging.getLogger(__name__)

FeedFactory = Callable[[str], CandleFeed]
FAILED_FEED_STATE = "failed"  # the pump of a feed died: its keys get no more candles


@dataclass(frozen=True, slots=True)
class HubConfig:
    """How a hub binds and how much it remembers."""

    history: int = DEFAULT_HISTORY  # candles kept per key for snapshots and gap repair
    sndhwm: int = DEFAULT_SNDHWM
    transport: Transport = "auto"  # auto: ipc in the state dir if the paths fit, else tcp
    tcp_host: str = "127.0.0.1"
    close_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValueError(f"hub history must keep at least 1 candle per key, got {self.history}")
        if self.sndhwm < 0 or self.close_timeout_s <= 0:
            raise ValueError("hub sndhwm must be >= 0 and close_timeout_s > 0")


@dataclass(frozen=True, slots=True)
class KeyStats:
    """One key's line in the control plane's `GET /hub`."""

    key: str
    subscribers: int
    candles_published: int
    last_close_ts: int | None  # close time (epoch ms) of the last published candle
    feed_state: str
    last_message_age_ms: int | None  # how long ago the broker's feed last heard upstream
    seq: int
    duplicates_dropped: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _KeyState:
    ring: HistoryRing
    refs: int = 1
    last_open_ms: int | None = None
    published: int = 0
    duplicates: int = 0
    last_close_ts: int | None = None


class CandleHub:
    """Owns one feed per broker and one stream per acquired key; publishes closed candles.

    Runs inside an asyncio loop: `await start()`, then `acquire`/`release` from that loop, then
    `await aclose()`. Each closed candle is deduplicated on (key, open_ms), numbered, kept in the
    key's history ring and published on the PUB socket, in that order, so a snapshot never
    promises less than the stream has delivered.
    """

    def __init__(
        self,
        feed_factory: FeedFactory,
        state: StateDir,
        config: HubConfig | None = None,
        *,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self._factory = feed_factory
        self._state = state
        self._config = config or HubConfig()
        self._given_context = context
        self._context: zmq.asyncio.Context | None = None  # made in start(): after any fork
        self._publisher: Publisher | None = None
        self._responder: SnapshotResponder | None = None
        self._feeds: dict[str, CandleFeed] = {}
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._failed: set[str] = set()
        self._keys: dict[CandleKey, _KeyState] = {}
        self._endpoints: HubEndpoints | None = None
        self._ipc_files: list[Path] = []
        self._last_epoch = 0
        self._closed = False
        self.dropped_unacquired = 0  # candles a feed produced for keys nobody holds

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> HubEndpoints:
        """Bind the PUB and snapshot sockets and start serving; return the bound endpoints."""
        if self._endpoints is not None:
            return self._endpoints
        if self._closed:
            raise HubError("the hub is closed")
        plan = plan_endpoints(self._state, self._config.transport, self._config.tcp_host)
        for endpoint in (plan.pub, plan.snapshot):
            path = ipc_path(endpoint)
            if path is not None:
                claim_ipc_path(path)
        context = self._context = self._given_context or zmq.asyncio.Context()
        publisher = self._publisher = Publisher(context, sndhwm=self._config.sndhwm)
        responder = self._responder = SnapshotResponder(context, self._ring_of)
        try:
            pub = self._bind(publisher.bind, plan.pub)
            snapshot = self._bind(responder.bind, plan.snapshot)
        except BaseException:
            await self.aclose()
            raise
        publisher.start()
        responder.start()
        self._endpoints = HubEndpoints(pub, snapshot)
        log.info("hub publishing on %s, snapshots on %s", pub, snapshot)
        return self._endpoints

    def _bind(self, bind: Callable[[str], str], endpoint: str) -> str:
        try:
            bound = bind(endpoint)
        except zmq.ZMQError as error:
            raise HubError(f"cannot bind hub socket {endpoint}: {error}") from None
        path = ipc_path(bound)
        if path is not None:
            self._ipc_files.append(path)
        return bound

    @property
    def endpoints(self) -> HubEndpoints:
        """Where subscribers connect (after `start()`)."""
        if self._endpoints is None:
            raise HubError("the hub has not been started")
        return self._endpoints

    async def aclose(self) -> None:
        """Close feeds, then sockets (`linger=0`), each step bounded by `close_timeout_s`."""
        if self._closed:
            return
        self._closed = True
        timeout = self._config.close_timeout_s
        feeds = list(self._feeds.items())
        results = await asyncio.gather(
            *(asyncio.wait_for(feed.aclose(), timeout) for _, feed in feeds),
            return_exceptions=True,
        )
        for (broker, _), result in zip(feeds, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("closing feed %s failed: %r", broker, result)
        for task in self._pumps.values():
            task.cancel()
        if self._pumps:
            _, pending = await asyncio.wait(self._pumps.values(), timeout=timeout)
            if pending:
                log.warning("%d feed pump(s) did not stop in %.1f s", len(pending), timeout)
        if self._publisher is not None:
            await self._publisher.aclose()
        if self._responder is not None:
            await self._responder.aclose()
        if self._context is not None and self._given_context is None:
            self._context.term()
        for path in self._ipc_files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._keys.clear()
        log.info("hub closed")

    async def __aenter__(self) -> CandleHub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- keys --------------------------------------------------------------------------------

    def acquire(self, key: CandleKey) -> None:
        """Take a reference on `key`; the first one subscribes the broker's feed to it."""
        if self._endpoints is None or self._closed:
            raise HubError("acquire on a hub that is not running")
        state = self._keys.get(key)
        if state is not None:
            state.refs += 1
            return
        wire.topic(key)  # refuse a key that cannot be a topic before touching the feed
        feed = self._feed(key.broker)
        feed.subscribe(key)
        self._last_epoch = max(time.time_ns(), self._last_epoch + 1)
        self._keys[key] = _KeyState(HistoryRing(self._config.history, self._last_epoch))
        log.info("%s acquired; %s feed subscribed", key, key.broker)

    def release(self, key: CandleKey) -> None:
        """Drop a reference on `key`; the last one unsubscribes the feed and forgets history."""
        state = self._keys.get(key)
        if state is None:
            raise HubError(f"release of {key}, which this hub does not hold")
        state.refs -= 1
        if state.refs > 0:
            return
        del self._keys[key]
        try:
            self._feeds[key.broker].unsubscribe(key)
        except Exception:
            log.exception("unsubscribing %s from its feed failed", key)
        log.info("%s released; %s feed unsubscribed", key, key.broker)

    def refcount(self, key: CandleKey) -> int:
        """How many holders `key` has (0 if none)."""
        state = self._keys.get(key)
        return 0 if state is None else state.refs

    def stats(self) -> list[KeyStats]:
        """One line per held key, sorted by key, for `GET /hub`."""
        lines = []
        for key, state in sorted(self._keys.items(), key=lambda item: str(item[0])):
            feed_state, age = self._feed_health(key.broker)
            lines.append(
                KeyStats(
                    key=str(key),
                    subscribers=state.refs,
                    candles_published=state.published,
                    last_close_ts=state.last_close_ts,
                    feed_state=feed_state,
                    last_message_age_ms=age,
                    seq=state.ring.seq,
                    duplicates_dropped=state.duplicates,
                )
            )
        return lines

    # -- feeds -------------------------------------------------------------------------------

    def _feed(self, broker: str) -> CandleFeed:
        feed = self._feeds.get(broker)
        if feed is None:
            feed = self._factory(broker)
            self._feeds[broker] = feed
            self._pumps[broker] = asyncio.get_running_loop().create_task(
                self._pump(broker, feed), name=f"hub-pump-{broker}"
            )
        return feed

    def _feed_health(self, broker: str) -> tuple[str, int | None]:
        feed = self._feeds[broker]
        status = feed.status()
        state = FAILED_FEED_STATE if broker in self._failed else status.state.value
        return state, status.last_message_age_ms

    def _ring_of(self, key: CandleKey) -> HistoryRing | None:
        state = self._keys.get(key)
        return None if state is None else state.ring

    async def _pump(self, broker: str, feed: CandleFeed) -> None:
        try:
            async for candle in feed.candles():
                await self._publish(candle)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The protocol says candles() never raises; if one does, say so loudly and show it
            # in /hub rather than restart a feed whose state we cannot trust.
            self._failed.add(broker)
            log.exception("the %s feed failed; its keys get no more candles", broker)

    async def _publish(self, candle: Candle) -> None:
        state = self._keys.get(candle.key)
        if state is None:
            self.dropped_unacquired += 1
            return
        if state.last_open_ms is not None and candle.open_ms <= state.last_open_ms:
            state.duplicates += 1
            level = logging.DEBUG if candle.open_ms == state.last_open_ms else logging.WARNING
            log.log(
                level,
                "%s candle at %d dropped (duplicate or late)",
                candle.key,
                candle.open_ms,
            )
            return
        state.last_open_ms = candle.open_ms
        item = state.ring.add(candle)  # ring first: a snapshot may promise it before PUB sends
        state.published += 1
        state.last_close_ts = candle.end_ms
        assert self._publisher is not None  # candles flow only after start()
        await self._publisher.send(wire.encode_candle(item))
