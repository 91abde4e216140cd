"""BybitTopics: the keys a Bybit feed produces, the upstream topics they need, and the state
the feed keeps; with the small records of that state (Backoff, requests, sources, markets).

One source (a topic and the aggregator building candles from it) per symbol, re-planned by
`bybit_wire.plan_upstream` when the symbol's timeframes change, the old topic kept until the new
one has produced each of its timeframes once. Its own module because this is bookkeeping, no
I/O: `BybitFeed` (bybit.py) builds on it with the connection and the candle stream.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from qkt.market import bybit_wire as wire
from qkt.market.aggregate import CandleAggregator
from qkt.market.bybit_rest import BybitHistory
from qkt.market.feed import FeedOptions, FeedState
from qkt.market.models import CandleKey, Timeframe
from qkt.market.outbox import Outbox


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: attempt n waits in [d/2, d], d = initial * 2^n."""

    initial_s: float
    max_s: float

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before reconnect attempt `attempt` (0-based)."""
        ceiling = min(self.max_s, self.initial_s * 2 ** min(attempt, 32))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class _Request:
    """A subscribe/unsubscribe sent and not answered yet."""

    op: str
    topics: tuple[str, ...]
    sent: float  # monotonic


@dataclass(slots=True)
class _Source:
    """One subscribed topic and the aggregator building candles from it."""

    upstream: wire.Upstream
    aggregator: CandleAggregator
    acked: bool = False


@dataclass(slots=True)
class _Market:
    """One symbol: its wanted timeframes, its current source and one being retired."""

    timeframes: set[Timeframe] = field(default_factory=set)
    current: _Source | None = None
    retiring: _Source | None = None
    handover: set[Timeframe] = field(default_factory=set)  # still owed by `current` once


class BybitTopics:
    """A Bybit feed's keys and upstream topics, and the state its connection keeps."""

    def __init__(self, options: FeedOptions, broker: str = "BYBIT", url: str | None = None) -> None:
        self._broker = broker
        linear = broker == "BYBIT_LINEAR"
        self._url = url or (options.bybit_linear_url if linear else options.bybit_spot_url)
        # The environment's proxy settings apply to the exchange, never to a loopback server.
        loopback = urlsplit(self._url).hostname in ("127.0.0.1", "localhost", "::1")
        self._proxy: Literal[True] | None = None if loopback else True
        self._options = options
        self._backoff = Backoff(options.reconnect_initial_s, options.reconnect_max_s)
        self._rng = random.Random()
        self._markets: dict[str, _Market] = {}
        self._sources: dict[str, _Source] = {}  # topic -> source
        self._outbox = Outbox()
        self._upstream: set[str] = set()  # topics subscribed on the current connection
        self._requests: dict[str, _Request] = {}  # unanswered, by req_id
        self._req_ids = itertools.count(1)
        self._dirty = asyncio.Event()
        self._state = FeedState.CONNECTING
        self._heard: float | None = None  # monotonic time of the last message
        self._exchange_ts: tuple[int, float] | None = None  # (exchange ms, monotonic then)
        self._reconnects = 0
        self._reported: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._history = BybitHistory(options, broker)

    @property
    def broker(self) -> str:
        """`BYBIT` or `BYBIT_LINEAR`."""
        return self._broker

    def history_source(self) -> BybitHistory:
        """REST klines of this feed's category (`FeedOptions.bybit_rest_url`)."""
        return self._history

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe(self, key: CandleKey) -> None:
        """Produce `key`; the symbol's first key subscribes upstream, later ones may re-plan."""
        if key.broker != self._broker:
            raise ValueError(f"{key} is not a {self._broker} key")
        if key in self._outbox.keys:
            return
        self._outbox.keys.add(key)
        self._markets.setdefault(key.symbol, _Market()).timeframes.add(key.timeframe)
        self._replan(key.symbol)

    def unsubscribe(self, key: CandleKey) -> None:
        """Stop producing `key`; a topic no key needs any more is unsubscribed upstream."""
        if key not in self._outbox.keys:
            return
        self._outbox.keys.discard(key)
        self._markets[key.symbol].timeframes.discard(key.timeframe)
        self._replan(key.symbol)

    def _replan(self, symbol: str) -> None:
        market = self._markets[symbol]
        if not market.timeframes:
            del self._markets[symbol]
            self._index()
            return
        plan = wire.plan_upstream(symbol, sorted(market.timeframes))
        current = market.current
        if current is None or current.upstream.topic != plan.topic:
            retiring = market.retiring
            if retiring is not None and retiring.upstream.topic == plan.topic:
                fresh = retiring  # back to the topic being retired: it is still subscribed
            else:
                fresh = self._new_source(symbol, plan)
            market.retiring = current
            market.handover = set(current.aggregator.timeframes) if current else set()
            current = market.current = fresh
        for source in (current, market.retiring):
            if source is None:
                continue
            for timeframe in source.aggregator.timeframes:
                if timeframe not in market.timeframes:
                    source.aggregator.remove_timeframe(timeframe)
        market.handover &= market.timeframes
        if not market.handover:
            market.retiring = None
        now = self._clock_ms()
        for timeframe in sorted(market.timeframes):
            if timeframe not in current.aggregator.timeframes:
                # From trades, the first candle counts from now; from klines, from the next one.
                since = now if plan.base is None else None
                current.aggregator.add_timeframe(timeframe, since_ms=since)
        self._index()

    def _new_source(self, symbol: str, plan: wire.Upstream) -> _Source:
        return _Source(plan, CandleAggregator(self._broker, symbol, plan.base))

    def _index(self) -> None:
        """Rebuild topic -> source and ask the connection to sync its subscriptions."""
        sources = {}
        for market in self._markets.values():
            for source in (market.current, market.retiring):
                if source is not None:
                    sources[source.upstream.topic] = source
        self._sources = sources
        self._dirty.set()

    def _clock_ms(self) -> int:
        """The exchange's time as last heard, moved on by the local clock since."""
        if self._exchange_ts is None:
            return time.time_ns() // 10**6
        exchange_ms, then = self._exchange_ts
        return exchange_ms + int((time.monotonic() - then) * 1000)
