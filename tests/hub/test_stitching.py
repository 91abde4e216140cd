"""History and live meet without a gap or a duplicate; a stale feed is seen and recovers."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qkt.hub import CandleHub, FeedEvent, HubConfig, HubSubscriber
from qkt.market.models import CandleKey
from qkt.market.registry import open_feed
from qkt.paths import StateDir
from tests.fakes.bybit_exchange import FakeBybit, KlineRow, fake_bybit, walk_rows
from tests.helpers import wait_until_async
from tests.hub.feeds import ScriptedFeeds, candle, run, take
from tests.hub.test_backfill import BTC, MINUTE, bybit_options

SERIES = 40


def _bucket_now() -> int:
    now = time.time_ns() // 10**6
    return now - now % MINUTE


def _push(fake: FakeBybit, rows: list[KlineRow]) -> None:
    for start, o, h, lo, c, v in rows:
        fake.push_kline("BTCUSDT", start, o, h, lo, c, v)


async def _ring(hub: CandleHub, count: int) -> list[KlineRow]:
    async with HubSubscriber(hub.endpoints) as sub:
        await sub.subscribe([BTC], warmup=count)
        got = [item.candle for item in await take(sub, count)]
    return [
        (c.open_ms, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume)) for c in got
    ]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history_ends=st.integers(min_value=1, max_value=SERIES - 1),
    live_offset=st.integers(min_value=-3, max_value=6),
)
def test_history_plus_live_is_the_exchanges_series(
    state_root: Path, history_ends: int, live_offset: int
) -> None:
    """The REST route knows the first `history_ends` candles at backfill time; the websocket
    then pushes from `history_ends + live_offset` (an overlap or a hole) to the end."""
    live_starts = max(0, min(SERIES - 1, history_ends + live_offset))
    end = _bucket_now()
    series = walk_rows(end - SERIES * MINUTE, SERIES, seed=history_ends)

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root)) as hub:
            hub.acquire(BTC, history=SERIES + 5)
            assert (await hub.backfilled(BTC)).candles == history_ends
            await wait_until_async(lambda: "kline.1.BTCUSDT" in fake.subscribed())
            fake.add_klines("BTCUSDT", series[history_ends:])  # what happened since
            _push(fake, series[live_starts:])
            await wait_until_async(lambda: hub.stats()[0].last_close_ts == end)
            assert await _ring(hub, SERIES) == series

    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", series[:history_ends])
        run(scenario(fake))


def test_a_stopped_websocket_makes_the_key_stale_and_it_recovers_without_a_lost_candle(
    state_root: Path,
) -> None:
    end = _bucket_now()
    series = walk_rows(end - 30 * MINUTE, 30)
    events: list[FeedEvent] = []

    async def scenario(fake: FakeBybit) -> None:
        options = bybit_options(fake)
        async with CandleHub(lambda b: open_feed(b, options), StateDir(state_root)) as hub:
            hub.add_listener(events.append)
            hub.acquire(BTC, history=30)
            assert (await hub.backfilled(BTC)).candles == 10
            await wait_until_async(lambda: "kline.1.BTCUSDT" in fake.subscribed())
            _push(fake, series[10:15])
            await wait_until_async(lambda: hub.stats()[0].last_close_ts == series[15][0])
            assert not hub.freshness(BTC).stale

            fake.stop_websocket()  # down: within far less than two 1m cadences it is stale
            await wait_until_async(lambda: bool(events) and events[-1].stale, timeout=30)
            assert hub.freshness(BTC).stale and "feed" in events[-1].reason
            assert hub.stats()[0].stale
            fake.add_klines("BTCUSDT", series[15:22])  # what the exchange had meanwhile

            fake.start_websocket()
            await wait_until_async(lambda: "kline.1.BTCUSDT" in fake.subscribed(), timeout=30)
            await wait_until_async(lambda: not events[-1].stale, timeout=30)
            assert events[-1].reason == "live again"
            _push(fake, series[21:])  # one candle again, then new ones
            await wait_until_async(lambda: hub.stats()[0].last_close_ts == end)
            assert await _ring(hub, 30) == series

    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", series[:10])
        run(scenario(fake))


def test_a_silent_live_feed_goes_stale_after_its_cadence_and_back_on_a_candle(
    state_root: Path,
) -> None:
    key = CandleKey.parse("SIM:BTCUSDT:1s")
    events: list[FeedEvent] = []

    async def scenario() -> None:
        feeds = ScriptedFeeds()
        config = HubConfig(freshness_interval_s=0.05)
        async with CandleHub(feeds, StateDir(state_root), config) as hub:
            hub.add_listener(events.append)
            hub.acquire(key)
            feeds["SIM"].push(candle(key, 0))
            await wait_until_async(lambda: hub.stats()[0].seq == 1)
            await wait_until_async(lambda: bool(events), timeout=20)
            fresh = hub.freshness(key)
            assert fresh.feed_state == "live" and "no candle for" in (fresh.reason or "")
            assert fresh.last_candle_age_ms is not None and fresh.last_candle_age_ms >= 2_500
            feeds["SIM"].push(candle(key, 1))
            await wait_until_async(lambda: len(events) >= 2, timeout=20)
        assert [e.stale for e in events][:2] == [True, False]

    run(scenario())
