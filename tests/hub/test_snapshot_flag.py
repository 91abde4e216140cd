"""The subscriber marks history: what a worker warms up on, and never trades on."""

from __future__ import annotations

from pathlib import Path

from qkt.hub import CandleHub, HubSubscriber
from qkt.paths import StateDir
from tests.helpers import wait_until_async
from tests.hub.feeds import ScriptedFeeds, candle, key, run, take

K1M = key("SIM:BTCUSDT:1m")


def test_snapshot_candles_are_flagged_and_live_ones_are_not(state_root: Path) -> None:
    async def scenario() -> None:
        feeds = ScriptedFeeds()
        async with CandleHub(feeds, StateDir(state_root)) as hub:
            hub.acquire(K1M)
            for i in range(5):
                feeds["SIM"].push(candle(K1M, i))
            await wait_until_async(lambda: hub.stats()[0].seq == 5)
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([K1M], warmup=3)
                for i in range(5, 8):
                    feeds["SIM"].push(candle(K1M, i))
                got = await take(sub, 6)
        assert [(item.seq, item.snapshot) for item in got] == [
            (3, True), (4, True), (5, True), (6, False), (7, False), (8, False)
        ]  # fmt: skip
        # The flag is delivery metadata: a candle compares equal however it came.
        assert got[0] == type(got[0])(got[0].candle, got[0].seq, got[0].epoch)

    run(scenario())
