"""Outbox: where a feed leaves closed candles for its consumer, each one exactly once."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from qkt.market.models import Candle, CandleKey


class Outbox:
    """Closed candles waiting for `CandleFeed.candles()`, filtered to the subscribed keys.

    It remembers the last open time emitted per key for the feed's whole life, so a candle seen
    twice (a repeated exchange push, a reconnect, two sources during a hand-over) goes out once,
    and never one older than what already went out.
    """

    def __init__(self) -> None:
        self.keys: set[CandleKey] = set()
        self._last_open: dict[CandleKey, int] = {}
        self._queue: deque[Candle] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    def put(self, candles: Iterable[Candle]) -> None:
        """Queue the candles of subscribed keys that are newer than the last one of their key."""
        for candle in candles:
            key = candle.key
            if key in self.keys and candle.open_ms > self._last_open.get(key, -1):
                self._last_open[key] = candle.open_ms
                self._queue.append(candle)
        if self._queue:
            self._ready.set()

    def pop_ready(self) -> list[Candle]:
        """Take everything queued (dropping keys unsubscribed since), without waiting."""
        out = [candle for candle in self._queue if candle.key in self.keys]
        self._queue.clear()
        self._ready.clear()
        return out

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until something is queued, the outbox is closed, `wake()` or `timeout` passes."""
        if self._queue or self._closed:
            return
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            pass

    def wake(self) -> None:
        """Make a pending `wait()` return now (subscriptions changed, the feed is closing)."""
        self._ready.set()

    def close(self) -> None:
        """No more candles: a pending `wait()` returns and the feed's loop ends."""
        self._closed = True
        self._ready.set()
