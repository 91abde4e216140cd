"""Backfill on acquire: once per key, every waiter warm, failures contained, SIM continuous."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from qkt.hub import CandleHub, HubConfig, HubSubscriber, Warmth
from qkt.market.feed import FeedOptions
from qkt.market.models import Candle, CandleKey
from qkt.market.registry import open_feed
from qkt.market.simulated import SimulatedFeed
from qkt.paths import StateDir
from tests.fakes.bybit_exchange import FakeBybit, fake_bybit, walk_rows
from tests.helpers import wait_until_async
from tests.hub.feeds import run, take

MINUTE = 60_000
BTC = CandleKey.parse("BYBIT:BTCUSDT:1m")


def _bucket_now() -> int:
    now = time.time_ns() // 10**6
    return now - now % MINUTE


def bybit_options(fake: FakeBybit, **extra: object) -> FeedOptions:
    """Feed options pointing every Bybit URL at the fake, with quick retries and reconnects."""
    settings: dict[str, object] = {
        "bybit_spot_url": fake.spot_url,
        "bybit_linear_url": fake.linear_url,
        "bybit_rest_url": fake.rest_url,
        "rest_backoff_s": 0.01,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        **extra,
    }
    return FeedOptions(**settings)  # type: ignore[arg-type]


def _values(candles: list[Candle]) -> list[tuple[int, str, str, str, str, str]]:
    return [
        (c.open_ms, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume))
        for c in candles
    ]


def test_five_concurrent_acquires_make_one_fetch_and_all_are_warm(state_root: Path) -> None:
    end = _bucket_now()
    rows = walk_rows(end - 2_500 * MINUTE, 2_500)

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root)) as hub:
            for _ in range(5):
                hub.acquire(BTC, history=2_500)
            records = await asyncio.gather(*(hub.backfilled(BTC) for _ in range(5)))
            assert {r.state for r in records} == {Warmth.WARM}
            assert {r.candles for r in records} == {2_500}
            assert records[0].source == "bybit-rest" and records[0].reason is None
            assert len(fake.rest_requests) == 3  # 2,500 rows: three pages of at most 1,000
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([BTC], warmup=2_500)
                got = [item.candle for item in await take(sub, 2_500)]
            assert _values(got) == rows
            (line,) = hub.stats()
            assert line.warm and line.history_candles == 2_500 and line.subscribers == 5

    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", rows)
        fake.set_forming("BTCUSDT", (end, "1", "1", "1", "1", "1"))  # never in the ring
        fake.rest_delay_s = 0.2  # the acquires overlap the fetch
        run(scenario(fake))


def test_a_snapshot_asked_during_the_backfill_gets_the_history(state_root: Path) -> None:
    end = _bucket_now()
    rows = walk_rows(end - 300 * MINUTE, 300)

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root)) as hub:
            hub.acquire(BTC, history=300)
            assert hub.history(BTC).state is Warmth.BACKFILLING
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([BTC], warmup=300)  # the hub holds its snapshot reply
                got = [item.candle for item in await take(sub, 300)]
            assert _values(got) == rows

    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", rows)
        fake.rest_delay_s = 0.5
        run(scenario(fake))


def test_a_later_acquire_asking_for_more_extends_the_running_fetch(state_root: Path) -> None:
    end = _bucket_now()
    rows = walk_rows(end - 1_500 * MINUTE, 1_500)

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root)) as hub:
            hub.acquire(BTC, history=200)
            hub.acquire(BTC, history=1_500)
            record = await hub.backfilled(BTC)
            assert record.state is Warmth.WARM and record.candles == 1_500

    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", rows)
        fake.rest_delay_s = 0.2
        run(scenario(fake))


def test_failures_leave_the_key_cold_with_a_reason_and_other_keys_warm(state_root: Path) -> None:
    end = _bucket_now()
    eth = CandleKey.parse("BYBIT:ETHUSDT:1m")
    unknown = CandleKey.parse("BYBIT:NOPEUSDT:1m")
    seconds = CandleKey.parse("BYBIT:ETHUSDT:30s")

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root)) as hub:
            hub.acquire(unknown, history=100)
            hub.acquire(eth, history=100)
            hub.acquire(seconds, history=100)
            hub.acquire(BTC, history=100)  # only 40 candles exist
            cold = await hub.backfilled(unknown)
            assert cold.state is Warmth.COLD and "Not supported symbols" in (cold.reason or "")
            assert (await hub.backfilled(eth)).state is Warmth.WARM
            assert "shortest interval is 1m" in ((await hub.backfilled(seconds)).reason or "")
            partial = await hub.backfilled(BTC)
            assert partial.state is Warmth.PARTIAL and partial.candles == 40
            assert (
                partial.missing(100) == 60
                and partial.reason == "40 of 100 candles of history exist"
            )
            # The keys still stream live candles.
            await wait_until_async(lambda: "kline.1.NOPEUSDT" in fake.subscribed())
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([unknown], warmup=10)
                fake.push_kline("NOPEUSDT", end, "1", "2", "0.5", "1.5", "3")
                (item,) = await take(sub, 1)
                assert item.candle.open_ms == end

    with fake_bybit() as fake:
        fake.add_klines("ETHUSDT", walk_rows(end - 100 * MINUTE, 100))
        fake.add_klines("BTCUSDT", walk_rows(end - 40 * MINUTE, 40))
        run(scenario(fake))


def test_an_unreachable_rest_host_leaves_keys_cold_and_the_hub_running(state_root: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake, bybit_rest_url=f"http://127.0.0.1:{port}", rest_retries=1)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root)) as hub:
            hub.acquire(BTC, history=100)
            record = await hub.backfilled(BTC)
            assert record.state is Warmth.COLD and "cannot reach Bybit" in (record.reason or "")
            assert hub.refcount(BTC) == 1

    with fake_bybit() as fake:
        run(scenario(fake))


def test_a_held_key_reacquired_reuses_its_ring(state_root: Path) -> None:
    """A worker restart: its keys stay held (or are taken again while others hold them)."""
    end = _bucket_now()

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root)) as hub:
            hub.acquire(BTC, history=50)
            hub.acquire(BTC, history=50)
            await hub.backfilled(BTC)
            hub.release(BTC)
            hub.acquire(BTC, history=50)
            assert (await hub.backfilled(BTC)).candles == 50
            assert len(fake.rest_requests) == 1

    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", walk_rows(end - 50 * MINUTE, 50))
        run(scenario(fake))


def test_sim_history_meets_the_live_walk_exactly(state_root: Path) -> None:
    key = CandleKey.parse("SIM:BTCUSDT:1m")

    async def scenario() -> None:
        options = FeedOptions(seed=3, speed=1_200)

        def factory(broker: str) -> SimulatedFeed:
            return SimulatedFeed(options, broker)

        async with CandleHub(factory, StateDir(state_root), HubConfig()) as hub:
            hub.acquire(key, history=300)
            record = await hub.backfilled(key)
            assert record.state is Warmth.WARM and record.candles == 300
            assert record.source == "sim"
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([key], warmup=300)
                got = [item.candle for item in await take(sub, 303, timeout=30)]
        opens = [c.open_ms for c in got]
        assert opens == list(range(opens[0], opens[0] + 303 * MINUTE, MINUTE))  # no gap, no dup
        for before, after in zip(got, got[1:], strict=False):
            assert after.open == before.close  # history, the stitch, and live alike

    run(scenario())


def test_history_that_comes_after_a_subscriber_started_never_reaches_it_as_live(
    state_root: Path,
) -> None:
    end = _bucket_now()

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake)
        config = HubConfig(snapshot_hold_s=0.1)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root), config) as hub:
            hub.acquire(BTC, history=50)
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([BTC], warmup=50)  # answered empty: the fetch is slow
                record = await hub.backfilled(BTC)
                assert record.state is Warmth.COLD and record.candles == 0
                assert record.reason == "the history came after the strategy had started"
                await wait_until_async(lambda: "kline.1.BTCUSDT" in fake.subscribed())
                fake.push_kline("BTCUSDT", end, "1", "2", "0.5", "1.5", "3")
                (item,) = await take(sub, 1)
                assert (item.candle.open_ms, item.seq, item.snapshot) == (end, 1, False)
                assert sub.stats().repaired == 0

    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", walk_rows(end - 50 * MINUTE, 50))
        fake.rest_delay_s = 1.0
        run(scenario(fake))


def test_the_candle_a_feed_started_in_comes_seconds_after_its_close(state_root: Path) -> None:
    """The simulated market of a symbol starts when its key is acquired, so the bucket it
    starts in is half-built and the feed drops it. The hub fetches it from history a few
    seconds after its close, rather than when the next candle shows the hole, a bar later."""
    key = CandleKey.parse("SIM:BTCUSDT:1m")
    start = _bucket_now() + MINUTE - 1_500  # market time: 1.5 s before a minute closes

    async def scenario() -> None:
        options = FeedOptions(seed=3, speed=1, sim_start_ms=start)

        def factory(broker: str) -> SimulatedFeed:
            return SimulatedFeed(options, broker)

        async with CandleHub(factory, StateDir(state_root), HubConfig()) as hub:
            hub.acquire(key, history=10)
            assert (await hub.backfilled(key)).candles == 10
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([key], warmup=0)
                (first,) = await take(sub, 1, timeout=30)  # a bar later would be ~60 s
                [stats] = hub.stats()
        assert first.candle.open_ms == start - start % MINUTE  # the bucket the walk began in
        assert not first.snapshot and first.seq == 11  # live, right after the 10 of history
        assert stats.duplicates_dropped == 0

    run(scenario())
