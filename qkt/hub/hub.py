"""The CandleHub: ref-counted candle keys over per-broker feeds, fanned out on ZeroMQ.

Each key's ring is backfilled once from its feed's history source on the first acquire, and
each key's freshness (live or stale) is watched; see `keystream`. The feeds, the per-candle path
and the freshness watch are `FeedIntake`'s (intake.py), which `CandleHub` builds on; its settings
are `HubConfig` (config.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import zmq
import zmq.asyncio

from qkt.hub import wire
from qkt.hub.config import DEFAULT_BACKFILL as DEFAULT_BACKFILL
from qkt.hub.config import HubConfig as HubConfig
from qkt.hub.endpoints import HubEndpoints, claim_ipc_path, ipc_path, plan_endpoints
from qkt.hub.errors import HubError
from qkt.hub.intake import FeedFactory as FeedFactory
from qkt.hub.intake import FeedIntake, Listener
from qkt.hub.keystream import KeyStream
from qkt.hub.publisher import Publisher
from qkt.hub.records import KeyFreshness, KeyHistory, KeyStats
from qkt.hub.snapshot import HistoryRing, SnapshotResponder
from qkt.market.feed import CandleFeed
from qkt.market.history import MAX_HISTORY
from qkt.market.models import CandleKey
from qkt.paths import StateDir

log = logging.getLogger(__name__)


class CandleHub(FeedIntake):
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
        self._keys: dict[CandleKey, KeyStream] = {}
        self._listeners: list[Listener] = []
        self._watch: asyncio.Task[None] | None = None
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
        responder = self._responder = SnapshotResponder(
            context, self._ring_of, self._filling, self._config.snapshot_hold_s
        )
        try:
            pub = self._bind(publisher.bind, plan.pub)
            snapshot = self._bind(responder.bind, plan.snapshot)
        except BaseException:
            await self.aclose()
            raise
        publisher.start()
        responder.start()
        self._watch = asyncio.get_running_loop().create_task(self._watch_freshness())
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
        if self._watch is not None:
            self._watch.cancel()
        await asyncio.gather(*(stream.aclose() for stream in self._keys.values()))
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

    def acquire(self, key: CandleKey, history: int | None = None) -> None:
        """Take a reference on `key`; the first one subscribes the feed and starts the backfill.

        `history`: closed candles wanted before the live ones (default `HubConfig.backfill`,
        at most 5,000). Acquires made while the backfill runs share it (a larger number extends
        it); `await backfilled(key)` waits for it. The hub never fails an acquire over history.
        """
        if self._endpoints is None or self._closed:
            raise HubError("acquire on a hub that is not running")
        wanted = self._config.backfill if history is None else history
        wanted = max(0, min(wanted, MAX_HISTORY))
        stream = self._keys.get(key)
        if stream is not None:
            stream.refs += 1
            stream.want(wanted)
            return
        wire.topic(key)  # refuse a key that cannot be a topic before touching the feed
        feed = self._feed(key.broker)
        feed.subscribe(key)
        self._last_epoch = max(time.time_ns(), self._last_epoch + 1)
        ring = HistoryRing(max(self._config.history, wanted), self._last_epoch)
        source = self._history_source(feed)
        speed = getattr(feed, "market_speed", 1.0)
        stream = KeyStream(
            key,
            ring,
            self._send,
            source,
            wanted=wanted,
            speed=speed if isinstance(speed, int | float) and speed > 0 else 1.0,
            fetch_timeout_s=self._config.backfill_timeout_s,
        )
        self._keys[key] = stream
        stream.start_backfill()
        log.info("%s acquired; %s feed subscribed", key, key.broker)

    async def backfilled(self, key: CandleKey) -> KeyHistory:
        """Wait until `key`'s backfill is over (warm, partial or failed) and say how it went."""
        stream = self._stream(key)
        await stream.ready.wait()
        return stream.history()

    def history(self, key: CandleKey) -> KeyHistory:
        """`key`'s backfill record now."""
        return self._stream(key).history()

    def freshness(self, key: CandleKey) -> KeyFreshness:
        """Whether `key`'s feed is live now, and the age of its last candle."""
        return self._stream(key).freshness(self._feed_health(key.broker)[0])

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(event)` each time a key goes stale or comes back live."""
        self._listeners.append(listener)

    def release(self, key: CandleKey) -> None:
        """Drop a reference on `key`; the last one unsubscribes the feed and forgets history."""
        stream = self._keys.get(key)
        if stream is None:
            raise HubError(f"release of {key}, which this hub does not hold")
        stream.refs -= 1
        if stream.refs > 0:
            return
        del self._keys[key]
        stream.cancel()
        try:
            self._feeds[key.broker].unsubscribe(key)
        except Exception:
            log.exception("unsubscribing %s from its feed failed", key)
        log.info("%s released; %s feed unsubscribed", key, key.broker)

    def _stream(self, key: CandleKey) -> KeyStream:
        stream = self._keys.get(key)
        if stream is None:
            raise HubError(f"the hub does not hold {key}")
        return stream

    def refcount(self, key: CandleKey) -> int:
        """How many holders `key` has (0 if none)."""
        stream = self._keys.get(key)
        return 0 if stream is None else stream.refs

    def stats(self) -> list[KeyStats]:
        """One line per held key, sorted by key, for `GET /hub`."""
        lines = []
        for key, stream in sorted(self._keys.items(), key=lambda item: str(item[0])):
            lines.append(stream.stats(*self._feed_health(key.broker)))
        return lines

    # -- the snapshot responder's questions (given to it in `start`) -------------------------

    def _ring_of(self, key: CandleKey) -> HistoryRing | None:
        stream = self._keys.get(key)
        if stream is None:
            return None
        if not stream.ready.is_set():
            stream.read_early = True
        return stream.ring

    def _filling(self, key: CandleKey) -> asyncio.Event | None:
        stream = self._keys.get(key)
        return None if stream is None else stream.ready
