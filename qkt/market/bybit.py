"""BybitFeed (`BYBIT` spot, `BYBIT_LINEAR`): closed candles from Bybit's v5 public websocket.

One upstream topic per symbol, chosen by `bybit_wire.plan_upstream` for all of the symbol's
timeframes together; every timeframe is built from it by one `CandleAggregator`. When the set of
timeframes needs another topic (a 1m key joins a 5m one), the old topic stays subscribed until
the new one has produced each of the old timeframes once, so no subscriber misses a candle.

The connection reconnects with capped exponential backoff and jitter, resubscribes everything,
pings every `ping_interval_s`, and reports `stale` when nothing was heard for `stale_after_s`
(and reconnects after twice that). The outbox keeps the last open time per key, so a reconnect
never emits a candle twice.

The keys' topics and their planning are `BybitTopics`' (bybit_topics.py), which BybitFeed
builds on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import websockets
from websockets.asyncio.client import ClientConnection, connect

from qkt.market import bybit_wire as wire
from qkt.market.aggregate import merge_closed
from qkt.market.bybit_topics import Backoff as Backoff
from qkt.market.bybit_topics import BybitTopics, _Request, _Source
from qkt.market.feed import FeedState, FeedStatus
from qkt.market.models import Candle, CandleKey

log = logging.getLogger(__name__)

_TICK_S = 0.2  # how often quiet markets are checked for candles whose end has passed
_TRADE_GRACE_MS = 1_000  # a trade may reach us this late; its candle waits for it
_STABLE_S = 30.0  # a connection that lasted this long resets the backoff


class BybitFeed(BybitTopics):
    """Bybit v5 public market data for one category (spot or linear) as closed candles."""

    # -- the candle stream -------------------------------------------------------------------

    async def candles(self) -> AsyncIterator[Candle]:
        """Connect (once) and yield closed candles until `aclose()`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self._broker} feed")
        outbox = self._outbox
        while not outbox.closed:
            self._advance()
            for candle in outbox.pop_ready():
                yield candle
            await outbox.wait(_TICK_S)

    def status(self) -> FeedStatus:
        """Connection state (stale when silent for `stale_after_s`) and last message age."""
        age = None if self._heard is None else int((time.monotonic() - self._heard) * 1000)
        state = self._state
        if state is FeedState.LIVE and age is not None:
            if age > self._options.stale_after_s * 1000:
                state = FeedState.STALE
        return FeedStatus(state, age, self._reconnects)

    async def aclose(self) -> None:
        """Close the connection and end `candles()`."""
        self._state = FeedState.CLOSED
        self._outbox.close()
        await self._history.aclose()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _advance(self) -> None:
        now = self._clock_ms()
        batches = []
        for source in self._sources.values():
            lag = _TRADE_GRACE_MS if source.upstream.base is None else 0
            batches.append(source.aggregator.advance(now - lag))
        self._emit(merge_closed(batches))

    def _emit(self, closed: list[Candle], source: _Source | None = None) -> None:
        if source is not None and closed:
            market = self._markets.get(source.aggregator.symbol)
            if market is not None and market.retiring is not None and source is market.current:
                market.handover -= {candle.key.timeframe for candle in closed}
                if not market.handover:
                    log.info(
                        "%s: %s replaced %s",
                        self._broker,
                        source.upstream.topic,
                        market.retiring.upstream.topic,
                    )
                    market.retiring = None
                    self._index()
        self._outbox.put(closed)

    # -- the connection ----------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._outbox.closed:
            self._state = FeedState.RECONNECTING if self._reconnects else FeedState.CONNECTING
            opened = time.monotonic()
            try:
                async with connect(
                    self._url,
                    ping_interval=None,  # Bybit wants its own JSON ping, sent by `_ping`
                    open_timeout=10,
                    close_timeout=1,
                    proxy=self._proxy,
                ) as ws:
                    opened = time.monotonic()
                    self._heard = opened
                    self._state = FeedState.LIVE
                    log.info("%s: connected to %s", self._broker, self._url)
                    await self._serve(ws)
                log.warning("%s: connection to %s closed", self._broker, self._url)
            except (OSError, TimeoutError, websockets.WebSocketException) as error:
                log.warning("%s: connection to %s lost: %s", self._broker, self._url, error)
            except Exception:
                # Whatever went wrong, the feed must outlive it: log it loudly and reconnect.
                log.exception("%s: unexpected error on %s", self._broker, self._url)
            finally:
                self._disconnected()
            if self._outbox.closed:
                break
            if time.monotonic() - opened >= _STABLE_S:
                attempt = 0
            delay = self._backoff.delay(attempt, self._rng)
            attempt += 1
            self._reconnects += 1
            self._state = FeedState.RECONNECTING
            log.info("%s: reconnecting in %.2f s", self._broker, delay)
            await asyncio.sleep(delay)

    async def _serve(self, ws: ClientConnection) -> None:
        helpers = [
            asyncio.create_task(self._sync(ws)),
            asyncio.create_task(self._ping(ws)),
            asyncio.create_task(self._watch(ws)),
        ]
        try:
            async for frame in ws:
                self._receive(frame)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def _disconnected(self) -> None:
        self._upstream.clear()
        self._requests.clear()
        now = self._clock_ms()
        batches = []
        for source in self._sources.values():
            source.acked = False
            batches.append(source.aggregator.interrupt(now))
        self._emit(merge_closed(batches))
        self._dirty.set()

    async def _sync(self, ws: ClientConnection) -> None:
        """Send subscribe/unsubscribe requests until upstream matches what the keys need."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            wanted = set(self._sources)
            for op, topics in (
                ("unsubscribe", sorted(self._upstream - wanted)),
                ("subscribe", sorted(wanted - self._upstream)),
            ):
                for chunk in _chunks(topics, wire.SPOT_MAX_ARGS):
                    req_id = str(next(self._req_ids))
                    self._requests[req_id] = _Request(op, chunk, time.monotonic())
                    await ws.send(wire.request(req_id, op, chunk))
                    if op == "subscribe":
                        self._upstream.update(chunk)
                    else:
                        self._upstream.difference_update(chunk)

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self._options.ping_interval_s)
            await ws.send(wire.request(str(next(self._req_ids)), "ping"))

    async def _watch(self, ws: ClientConnection) -> None:
        """Cut a connection silent for twice `stale_after_s`, or one that leaves a request
        unanswered that long: it is dead, or lost a subscription we would wait for forever."""
        limit = 2 * self._options.stale_after_s
        while True:
            await asyncio.sleep(min(limit / 4, 1.0))
            now = time.monotonic()
            if self._heard is not None and now - self._heard > limit:
                log.warning("%s: nothing heard for %.1f s; reconnecting", self._broker, limit)
                await ws.close()
                return
            if any(now - request.sent > limit for request in self._requests.values()):
                log.warning(
                    "%s: a request went unanswered for %.1f s; reconnecting", self._broker, limit
                )
                await ws.close()
                return

    def _receive(self, frame: str | bytes) -> None:
        self._heard = time.monotonic()
        try:
            message = wire.parse_message(frame)
            if isinstance(message, wire.Ack):
                self._on_ack(message)
            elif isinstance(message, wire.Push):
                self._on_push(message)
        except wire.WireError as error:
            self._report(error)
        except Exception:
            # A bug here must not end the feed for every other symbol: loud, then go on.
            log.exception("%s: failed to handle a message: %.200r", self._broker, frame)

    def _on_ack(self, ack: wire.Ack) -> None:
        sent = self._requests.pop(ack.req_id, None) if ack.req_id is not None else None
        if sent is None:
            return  # a pong, or the answer to a request of an earlier connection
        op, topics = sent.op, sent.topics
        if not ack.success:
            log.error("%s: %s %s refused: %s", self._broker, op, ",".join(topics), ack.ret_msg)
            if op == "subscribe":
                self._upstream.difference_update(topics)
            return
        if op == "subscribe":
            for topic in topics:
                source = self._sources.get(topic)
                if source is not None and not source.acked:
                    self._acknowledged(source)

    def _acknowledged(self, source: _Source) -> None:
        source.acked = True
        if source.upstream.base is None:
            source.aggregator.resume(self._clock_ms())  # trades are whole from now on

    def _on_push(self, push: wire.Push) -> None:
        source = self._sources.get(push.topic)
        if source is None:
            return  # a topic just unsubscribed
        self._exchange_ts = (push.ts_ms, time.monotonic())
        aggregator = source.aggregator
        closed: list[Candle] = []
        base = source.upstream.base
        if base is None:
            for trade in push.trades:
                closed += aggregator.on_trade(trade.ts_ms, trade.price, trade.size)
        else:
            for kline in push.klines:
                if not kline.confirm:
                    continue
                if kline.start_ms % base.ms:
                    self._report(wire.WireError(push.topic, "kline start not aligned"))
                    continue
                key = CandleKey(self._broker, aggregator.symbol, base)
                candle = Candle(
                    key,
                    kline.start_ms,
                    kline.open,
                    kline.high,
                    kline.low,
                    kline.close,
                    kline.volume,
                )
                closed += aggregator.on_candle(candle)
        self._emit(merge_closed([closed]), source)

    def _report(self, error: wire.WireError) -> None:
        """Log a malformed message once per (topic, kind of problem); repeats go to debug."""
        if (error.topic, error.reason) in self._reported:
            log.debug("%s: skipped malformed message: %s", self._broker, error)
            return
        self._reported.add((error.topic, error.reason))
        log.warning(
            "%s: skipped malformed message on topic %s: %s", self._broker, error.topic, error
        )


def _chunks(items: list[str], size: int) -> Iterator[tuple[str, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])
