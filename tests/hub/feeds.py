"""A CandleFeed the tests drive by hand, and the small builders the hub tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from qkt.hub import HubSubscriber, SequencedCandle
from qkt.market.feed import FeedState, FeedStatus
from qkt.market.models import Candle, CandleKey

T = TypeVar("T")
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def key(text: str) -> CandleKey:
    return CandleKey.parse(text)


def candle(k: CandleKey, i: int) -> Candle:
    """The i-th candle of `k`: exact prices with trailing zeros kept, distinct per i."""
    base = Decimal("100.10") + i
    return Candle(
        key=k,
        open_ms=BASE_MS + i * k.timeframe.ms,
        open=base,
        high=base + Decimal("0.50"),
        low=base - Decimal("0.25"),
        close=base + Decimal("0.125"),
        volume=Decimal("1.000") + i,
    )


class ScriptedFeed:
    """Implements `CandleFeed`: logs subscribe/unsubscribe calls and yields what tests push."""

    def __init__(self, broker: str) -> None:
        self._broker = broker
        self.calls: list[tuple[str, CandleKey]] = []
        self.subscribed: set[CandleKey] = set()
        self.closed = False
        self._queue: asyncio.Queue[Candle | None] = asyncio.Queue()
        self._last_push: float | None = None

    @property
    def broker(self) -> str:
        return self._broker

    def subscribe(self, k: CandleKey) -> None:
        self.calls.append(("subscribe", k))
        self.subscribed.add(k)

    def unsubscribe(self, k: CandleKey) -> None:
        self.calls.append(("unsubscribe", k))
        self.subscribed.discard(k)

    def push(self, item: Candle) -> None:
        """Hand the hub a closed candle (whether or not its key is subscribed)."""
        self._last_push = time.monotonic()
        self._queue.put_nowait(item)

    async def candles(self) -> AsyncIterator[Candle]:
        while (item := await self._queue.get()) is not None:
            yield item

    def status(self) -> FeedStatus:
        age = None if self._last_push is None else int((time.monotonic() - self._last_push) * 1000)
        return FeedStatus(FeedState.CLOSED if self.closed else FeedState.LIVE, age)

    async def aclose(self) -> None:
        self.closed = True
        self._queue.put_nowait(None)


class ScriptedFeeds:
    """The hub's feed factory: one ScriptedFeed per broker, remembered for the test to drive."""

    def __init__(self) -> None:
        self.feeds: dict[str, ScriptedFeed] = {}
        self.created: list[str] = []

    def __call__(self, broker: str) -> ScriptedFeed:
        self.created.append(broker)
        feed = self.feeds[broker] = ScriptedFeed(broker)
        return feed

    def __getitem__(self, broker: str) -> ScriptedFeed:
        return self.feeds[broker]


async def take(sub: HubSubscriber, n: int, timeout: float = 10.0) -> list[SequencedCandle]:
    """The next `n` candles from `sub`, failing the test if they do not come in time."""
    got: list[SequencedCandle] = []
    try:
        async with asyncio.timeout(timeout):
            while len(got) < n:
                got.append(await anext(sub))
    except TimeoutError:
        raise AssertionError(f"got {len(got)} of {n} candles in {timeout}s: {got[-3:]}") from None
    return got


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run a test scenario in a fresh event loop, bounded so a hang fails instead of stalling."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())
