"""KeyStream.fetch_overdue: a candle the feed owes is fetched from history, once, a grace after
its close, and never while the feed is down (unit level, with the clocks in the test's hands)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from qkt.hub.keystream import OVERDUE_GRACE_S, KeyStream
from qkt.hub.snapshot import HistoryRing
from qkt.hub.wire import SequencedCandle
from qkt.market.models import Candle
from tests.helpers import wait_until_async
from tests.hub.feeds import candle, key, run

K1M = key("SIM:BTCUSDT:1m")
MINUTE = 60_000


class Source:
    """A HistorySource whose clock the test sets; it has every candle but the `missing` ones
    (a bucket without trades) and counts the asks."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms
        self.asked: list[tuple[int, int]] = []
        self.missing: set[int] = set()

    @property
    def name(self) -> str:
        return "test"

    def now_ms(self) -> int:
        return self.now

    async def pages(self, k: object, start_ms: int, end_ms: int) -> AsyncIterator[list[Candle]]:
        self.asked.append((start_ms, end_ms))
        first = candle(K1M, 0).open_ms
        opens = (t for t in range(start_ms, end_ms, MINUTE) if t not in self.missing)
        yield [candle(K1M, (t - first) // MINUTE) for t in opens]

    async def aclose(self) -> None:
        pass


async def settled(stream: KeyStream) -> None:
    """A fetch that fetch_overdue started (a task) has finished."""
    await asyncio.sleep(0)
    await wait_until_async(lambda: stream._task is None or stream._task.done())


def test_an_owed_candle_is_fetched_after_the_grace_once_and_not_while_the_feed_is_down() -> None:
    async def scenario() -> None:
        sent: list[SequencedCandle] = []
        history = [candle(K1M, i) for i in range(3)]
        source = Source(now_ms=history[-1].end_ms + 1_000)  # candle 3 is forming
        stream = KeyStream(K1M, HistoryRing(100, 1), sent.append, source, wanted=3)
        stream.start_backfill()
        await stream.ready.wait()
        assert stream.last_open_ms == history[-1].open_ms and sent == []

        stream.fetch_overdue("live", now=0.0)  # candle 3 has not closed yet
        source.now = candle(K1M, 4).open_ms + 500  # now it has, and the feed did not send it
        stream.fetch_overdue("live", now=10.0)  # the grace starts
        stream.fetch_overdue("live", now=10.0 + OVERDUE_GRACE_S - 0.1)
        stream.fetch_overdue("reconnecting", now=20.0)  # down: its reconnect repairs
        await settled(stream)
        assert source.asked == [(history[0].open_ms, history[-1].end_ms)]  # the backfill only

        stream.fetch_overdue("live", now=10.0 + OVERDUE_GRACE_S)
        await settled(stream)
        assert [item.candle for item in sent] == [candle(K1M, 3)]
        assert source.asked[1:] == [(candle(K1M, 3).open_ms, candle(K1M, 4).open_ms)]

        stream.offer(candle(K1M, 3))  # the feed's own copy, late: a duplicate
        assert stream.duplicates == 1 and len(sent) == 1

        # Candle 4 closes with no trade: history has none either, and it is asked for once.
        source.missing.add(candle(K1M, 4).open_ms)
        source.now = candle(K1M, 5).open_ms + 500
        stream.fetch_overdue("live", now=30.0)
        stream.fetch_overdue("live", now=30.0 + OVERDUE_GRACE_S)
        await settled(stream)
        for later in (40.0, 50.0, 60.0):
            stream.fetch_overdue("live", now=later)
            await settled(stream)
        assert len(source.asked) == 3 and len(sent) == 1
        await stream.aclose()

    run(scenario())
