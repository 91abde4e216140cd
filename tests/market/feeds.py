"""Test helpers for feeds: run `candles()` in a task and collect what it yields."""

from __future__ import annotations

import asyncio
from types import TracebackType

from qkt.market.feed import CandleFeed
from qkt.market.models import Candle, CandleKey


class Collector:
    """`async with Collector(feed) as got:` runs the feed into `got.candles`; exit closes it."""

    def __init__(self, feed: CandleFeed) -> None:
        self.feed = feed
        self.candles: list[Candle] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        async for candle in self.feed.candles():
            self.candles.append(candle)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.feed.aclose()
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout=10)

    def of(self, key: CandleKey) -> list[Candle]:
        """The candles collected for `key`, in the order they came."""
        return [candle for candle in self.candles if candle.key == key]
