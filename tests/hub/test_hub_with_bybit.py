"""The hub over the real BybitFeed and the fake exchange: one upstream subscription per market."""

from __future__ import annotations

import asyncio
from pathlib import Path

from qkt.hub import CandleHub, HubSubscriber
from qkt.market.feed import CandleFeed, FeedOptions
from qkt.market.models import CandleKey
from qkt.market.registry import open_feed
from qkt.paths import StateDir
from tests.fakes.bybit_exchange import FakeBybit, fake_bybit
from tests.helpers import wait_until_async
from tests.hub.feeds import take

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
BTC_1M = CandleKey.parse("BYBIT:BTCUSDT:1m")


def _feeds(fake: FakeBybit) -> FeedOptions:
    return FeedOptions(
        bybit_spot_url=fake.spot_url,
        bybit_linear_url=fake.linear_url,
        reconnect_initial_s=0.02,
        reconnect_max_s=0.1,
    )


def _push_minute(fake: FakeBybit, i: int) -> None:
    price = 20_000 + i
    fake.push_kline(
        "BTCUSDT", T0 + i * MINUTE, str(price), str(price + 5), str(price - 5), f"{price}.5", "1.25"
    )


def _subscription_args(fake: FakeBybit, op: str) -> list[str]:
    return [arg for r in fake.subscribe_requests() if r.op == op for arg in r.args]


def test_two_strategies_on_one_market_share_one_exchange_subscription(state_root: Path) -> None:
    async def scenario(fake: FakeBybit) -> None:
        options = _feeds(fake)

        def factory(broker: str) -> CandleFeed:
            return open_feed(broker, options)

        async with CandleHub(factory, StateDir(state_root)) as hub:
            endpoints = await hub.start()
            hub.acquire(BTC_1M)  # first strategy deploys
            hub.acquire(BTC_1M)  # second strategy deploys on the same key
            await wait_until_async(lambda: fake.subscribed() == {"kline.1.BTCUSDT"})
            async with HubSubscriber(endpoints) as first, HubSubscriber(endpoints) as second:
                await first.subscribe([BTC_1M])
                await second.subscribe([BTC_1M])
                for i in range(5):
                    _push_minute(fake, i)
                got_first = await take(first, 5)
                got_second = await take(second, 5)
            assert _subscription_args(fake, "subscribe") == ["kline.1.BTCUSDT"]
            assert got_first == got_second
            assert [item.seq for item in got_first] == [1, 2, 3, 4, 5]
            assert [item.candle.open_ms for item in got_first] == [
                T0 + i * MINUTE for i in range(5)
            ]
            assert str(got_first[0].candle.close) == "20000.5"

            hub.release(BTC_1M)
            assert _subscription_args(fake, "unsubscribe") == []  # one strategy still reads it
            hub.release(BTC_1M)
            await wait_until_async(lambda: _subscription_args(fake, "unsubscribe"))
            assert _subscription_args(fake, "unsubscribe") == ["kline.1.BTCUSDT"]

    with fake_bybit() as fake:
        asyncio.run(asyncio.wait_for(scenario(fake), timeout=60))
