"""BybitFeed against the fake exchange: subscriptions, derivation, reconnects, staleness, pings."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import orjson
import pytest

from qkt.market.bybit import Backoff, BybitFeed
from qkt.market.feed import FeedOptions, FeedState
from qkt.market.models import CandleKey
from tests.fakes.bybit_exchange import FakeBybit, fake_bybit
from tests.helpers import wait_until_async
from tests.market.feeds import Collector

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
BTC_1M = CandleKey.parse("BYBIT:BTCUSDT:1m")
BTC_5M = CandleKey.parse("BYBIT:BTCUSDT:5m")


def _options(fake: FakeBybit, **changes: float) -> FeedOptions:
    values: dict[str, float] = {"reconnect_initial_s": 0.02, "reconnect_max_s": 0.1} | changes
    return FeedOptions(bybit_spot_url=fake.spot_url, bybit_linear_url=fake.linear_url, **values)  # type: ignore[arg-type]


def _run(scenario: Callable[[FakeBybit], Awaitable[None]]) -> None:
    with fake_bybit() as fake:
        asyncio.run(asyncio.wait_for(scenario(fake), timeout=60))


def _minute(fake: FakeBybit, i: int, symbol: str = "BTCUSDT") -> int:
    """Push the confirmed 1m kline number `i` (open i+100, high +2, low -1, close +1, volume 1)."""
    price = 100 + i
    return fake.push_kline(
        symbol, T0 + i * MINUTE, str(price), str(price + 2), str(price - 1), str(price + 1), "1.5"
    )


def test_two_subscriptions_of_one_key_and_derived_timeframes_share_one_topic() -> None:
    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(BTC_1M)
        feed.subscribe(BTC_1M)
        feed.subscribe(BTC_5M)
        async with Collector(feed) as got:
            await wait_until_async(lambda: fake.subscribed() == {"kline.1.BTCUSDT"})
            for i in range(6):
                _minute(fake, i)
            await wait_until_async(lambda: len(got.of(BTC_1M)) == 6 and got.of(BTC_5M))
        subscribes = fake.subscribe_requests()
        assert [(r.op, r.args) for r in subscribes] == [("subscribe", ("kline.1.BTCUSDT",))]
        five = got.of(BTC_5M)
        assert [(c.open_ms, c.open, c.high, c.low, c.close, c.volume) for c in five] == [
            (T0, Decimal(100), Decimal(106), Decimal(99), Decimal(105), Decimal("7.5"))
        ]
        # The 5m candle closes together with the 1m candle that completes it, and after it.
        position = {id(c): n for n, c in enumerate(got.candles)}
        assert position[id(five[0])] == position[id(got.of(BTC_1M)[4])] + 1

    _run(scenario)


def test_unsubscribing_the_last_key_of_a_topic_unsubscribes_upstream() -> None:
    eth = CandleKey.parse("BYBIT:ETHUSDT:1m")

    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(BTC_1M)
        feed.subscribe(eth)
        async with Collector(feed):
            await wait_until_async(lambda: len(fake.subscribed()) == 2)
            feed.unsubscribe(BTC_1M)
            feed.unsubscribe(BTC_1M)  # idempotent
            await wait_until_async(lambda: fake.subscribed() == {"kline.1.ETHUSDT"})
        ops = [(r.op, r.args) for r in fake.subscribe_requests()]
        assert ops == [
            ("subscribe", ("kline.1.BTCUSDT", "kline.1.ETHUSDT")),
            ("unsubscribe", ("kline.1.BTCUSDT",)),
        ]

    _run(scenario)


def test_spot_subscriptions_are_split_into_requests_of_at_most_ten_args() -> None:
    symbols = [f"C{n:02d}USDT" for n in range(23)]

    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        for symbol in symbols:
            feed.subscribe(CandleKey.parse(f"BYBIT:{symbol}:1m"))
        async with Collector(feed):
            await wait_until_async(lambda: len(fake.subscribed()) == 23)
        requests = fake.subscribe_requests()
        assert [len(r.args) for r in requests] == [10, 10, 3]
        assert sorted(a for r in requests for a in r.args) == [f"kline.1.{s}" for s in symbols]

    _run(scenario)


def test_fake_exchange_refuses_more_than_ten_args_on_spot() -> None:
    async def scenario(fake: FakeBybit) -> None:
        import websockets

        async with websockets.connect(fake.spot_url, proxy=None) as ws:
            args = [f"kline.1.C{n}USDT" for n in range(11)]
            await ws.send(orjson.dumps({"req_id": "7", "op": "subscribe", "args": args}))
            ack = orjson.loads(await ws.recv())
        assert ack["success"] is False and ack["req_id"] == "7" and ack["op"] == "subscribe"
        assert set(ack) == {"success", "ret_msg", "conn_id", "req_id", "op"}
        assert fake.subscribed() == set()

    _run(scenario)


def test_reconnects_after_ten_drops_without_duplicates_or_gaps() -> None:
    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(BTC_1M)
        feed.subscribe(BTC_5M)
        async with Collector(feed) as got:
            for i in range(11):
                await wait_until_async(lambda: "kline.1.BTCUSDT" in fake.subscribed())
                if i:
                    _minute(fake, i - 1)  # the exchange repeats the last kline: not a new candle
                _minute(fake, i)
                await wait_until_async(lambda n=i: len(got.of(BTC_1M)) == n + 1)
                if i < 10:
                    assert fake.drop_all() == 1
            assert feed.status().reconnects == 10
        assert [c.open_ms for c in got.of(BTC_1M)] == [T0 + i * MINUTE for i in range(11)]
        # Each reconnect lost nothing (every minute came), so the derived 5m candles are whole.
        assert [(c.open_ms, c.volume) for c in got.of(BTC_5M)] == [
            (T0, Decimal("7.5")),
            (T0 + 5 * MINUTE, Decimal("7.5")),
        ]
        assert fake.connections_opened == 11
        per_connection = {r.conn: r.args for r in fake.subscribe_requests()}
        assert per_connection == {n: ("kline.1.BTCUSDT",) for n in range(1, 12)}

    _run(scenario)


def test_a_derived_candle_missing_base_candles_after_a_reconnect_is_dropped() -> None:
    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(BTC_1M)
        feed.subscribe(BTC_5M)
        async with Collector(feed) as got:
            await wait_until_async(lambda: fake.subscribed())
            _minute(fake, 0)
            _minute(fake, 1)
            await wait_until_async(lambda: len(got.of(BTC_1M)) == 2)
            fake.drop_all()
            await wait_until_async(lambda: fake.subscribed())
            for i in range(3, 11):  # minute 2 was lost during the outage
                _minute(fake, i)
            await wait_until_async(lambda: len(got.of(BTC_1M)) == 10)
        assert [c.open_ms for c in got.of(BTC_5M)] == [T0 + 5 * MINUTE]

    _run(scenario)


def test_adding_a_finer_timeframe_hands_over_to_its_topic_without_losing_a_candle() -> None:
    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(BTC_5M)
        async with Collector(feed) as got:
            await wait_until_async(lambda: fake.subscribed() == {"kline.5.BTCUSDT"})
            fake.push_kline("BTCUSDT", T0, "1", "2", "1", "2", "5", interval="5")
            await wait_until_async(lambda: got.of(BTC_5M))
            feed.subscribe(BTC_1M)  # 1m + 5m are both built from kline.1 from now on
            await wait_until_async(lambda: len(fake.subscribed()) == 2)
            for i in range(5, 10):
                _minute(fake, i)
            fake.push_kline(
                "BTCUSDT", T0 + 5 * MINUTE, "105", "111", "104", "110", "7.5", interval="5"
            )
            await wait_until_async(lambda: fake.subscribed() == {"kline.1.BTCUSDT"})
            _minute(fake, 10)
            await wait_until_async(lambda: len(got.of(BTC_1M)) == 6)
        assert [c.open_ms for c in got.of(BTC_5M)] == [T0, T0 + 5 * MINUTE]
        assert got.of(BTC_5M)[1].high == Decimal(111)
        ops = [(r.op, r.args) for r in fake.subscribe_requests()]
        assert ops == [
            ("subscribe", ("kline.5.BTCUSDT",)),
            ("subscribe", ("kline.1.BTCUSDT",)),
            ("unsubscribe", ("kline.5.BTCUSDT",)),
        ]

    _run(scenario)


def test_trades_build_second_candles_and_a_quiet_market_still_closes_them() -> None:
    base = (time.time_ns() // 10**6 // MINUTE + 2) * MINUTE
    one_s = CandleKey.parse("BYBIT:BTCUSDT:1s")

    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(one_s)
        feed.subscribe(BTC_1M)
        async with Collector(feed) as got:
            await wait_until_async(lambda: fake.subscribed() == {"publicTrade.BTCUSDT"})
            # The fake acks a subscribe before it pushes anything on it, like Bybit.
            fake.push_trades("BTCUSDT", [(base + 100, "10.5", "1"), (base + 500, "11", "2")])
            fake.push_trades("BTCUSDT", [(base + 1200, "9", "1"), (base + 59_900, "12", "0.5")])
            # No later trade: the clock (exchange time + local time since) closes them.
            await wait_until_async(lambda: got.of(BTC_1M), timeout=10)
        assert [(c.open_ms - base, c.close) for c in got.of(one_s)] == [
            (0, Decimal(11)),
            (1000, Decimal(9)),
            (59_000, Decimal(12)),
        ]
        [minute] = got.of(BTC_1M)
        assert (minute.open_ms, minute.open, minute.high, minute.low, minute.close) == (
            base,
            Decimal("10.5"),
            Decimal(12),
            Decimal(9),
            Decimal(12),
        )
        assert minute.volume == Decimal("4.5")

    _run(scenario)


def test_a_stalled_exchange_shows_stale_and_the_feed_recovers() -> None:
    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake, stale_after_s=0.3, ping_interval_s=0.05))
        assert feed.status().state is FeedState.CONNECTING
        feed.subscribe(BTC_1M)
        async with Collector(feed) as got:
            await wait_until_async(lambda: feed.status().state is FeedState.LIVE)
            fake.stall()
            status = await wait_until_async(
                lambda: (s := feed.status()).state is FeedState.STALE and s
            )
            assert status.last_message_age_ms is not None and status.last_message_age_ms > 300
            fake.resume()
            await wait_until_async(lambda: "kline.1.BTCUSDT" in fake.subscribed())
            await wait_until_async(lambda: _minute(fake, 0) and got.of(BTC_1M))
            assert feed.status().state is FeedState.LIVE
        assert feed.status().state is FeedState.CLOSED

    _run(scenario)


def test_pings_are_sent_and_pongs_keep_the_feed_live() -> None:
    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake, ping_interval_s=0.05, stale_after_s=0.5))
        feed.subscribe(BTC_1M)
        async with Collector(feed):
            await wait_until_async(
                lambda: sum(r.op == "ping" for r in fake.requests if r.conn == 1) >= 5
            )
            assert feed.status().state is FeedState.LIVE
        pings = [r for r in fake.requests if r.op == "ping"]
        assert all(r.req_id and r.args == () for r in pings)
        assert len({r.req_id for r in pings}) == len(pings)

    _run(scenario)


def test_linear_uses_its_own_endpoint_and_pong_shape() -> None:
    key = CandleKey.parse("BYBIT_LINEAR:BTCUSDT:1m")

    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake, ping_interval_s=0.05, stale_after_s=0.4), "BYBIT_LINEAR")
        feed.subscribe(key)
        async with Collector(feed) as got:
            await wait_until_async(lambda: "kline.1.BTCUSDT" in fake.subscribed("linear"))
            fake.push_kline("BTCUSDT", T0, "1", "1", "1", "1", "0", category="linear")
            await wait_until_async(lambda: got.of(key))
            await wait_until_async(lambda: sum(r.op == "ping" for r in fake.requests) >= 10)
            assert feed.status().state is FeedState.LIVE
        assert fake.subscribed("spot") == set()

    _run(scenario)


def test_malformed_messages_are_logged_once_with_their_topic_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = "kline.1.BTCUSDT"

    def kline(**fields: object) -> dict[str, object]:
        entry = {
            "start": T0,
            "end": T0 + MINUTE - 1,
            "interval": "1",
            "open": "1",
            "close": "1",
            "high": "1",
            "low": "1",
            "volume": "1",
            "confirm": True,
            "timestamp": T0,
        }
        entry.update(fields)
        return {"topic": topic, "type": "snapshot", "ts": T0 + MINUTE, "data": [entry]}

    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(BTC_1M)
        async with Collector(feed) as got:
            await wait_until_async(lambda: fake.subscribed())
            without_close = kline()
            del without_close["data"][0]["close"]  # type: ignore[attr-defined]
            bad = [
                '{"topic": "kline.1.BTCUSDT", "data": [',  # not JSON
                without_close,
                kline(close="abc"),
                kline(close="abc"),  # the same problem again: not logged again
                kline(high=1.5),  # a number where Bybit sends a string
            ]
            for message in bad:
                fake.push(topic, message)
            _minute(fake, 0)
            await wait_until_async(lambda: got.of(BTC_1M))
        assert [c.open_ms for c in got.candles] == [T0]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        malformed = [w for w in warnings if "malformed" in w]
        assert len(malformed) == 4, malformed
        assert all(topic in w for w in malformed)
        assert any("not JSON" in w for w in malformed)
        assert any("'close'" in w and "abc" in w for w in malformed)

    caplog.set_level(logging.WARNING, logger="qkt.market")
    _run(scenario)


def test_a_subscribe_left_unanswered_is_retried_on_a_new_connection() -> None:
    eth = CandleKey.parse("BYBIT:ETHUSDT:1m")

    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake, stale_after_s=0.2, ping_interval_s=0.05))
        feed.subscribe(BTC_1M)
        async with Collector(feed) as got:
            await wait_until_async(lambda: fake.subscribed() == {"kline.1.BTCUSDT"})
            fake.stall()
            feed.subscribe(eth)
            await wait_until_async(
                lambda: any("kline.1.ETHUSDT" in r.args for r in fake.subscribe_requests())
            )
            fake.resume()  # pongs flow again, but that subscribe was lost
            await wait_until_async(lambda: "kline.1.ETHUSDT" in fake.subscribed())
            await wait_until_async(lambda: _minute(fake, 0, "ETHUSDT") and got.of(eth))
        assert fake.connections_opened >= 2

    _run(scenario)


def test_backoff_doubles_up_to_its_cap_with_jitter_and_never_zero() -> None:
    backoff = Backoff(initial_s=1.0, max_s=60.0)
    rng = random.Random(1)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (6, 60.0), (100, 60.0)]:
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not one fixed value
    # Even a server that drops every connection at once gets at most ~300 per 5 minutes.
    assert sum(backoff.delay(0, rng) for _ in range(300)) >= 150


def test_a_key_dropped_and_taken_again_before_the_sync_keeps_its_topic_live() -> None:
    base = (time.time_ns() // 10**6 // MINUTE + 2) * MINUTE
    one_s = CandleKey.parse("BYBIT:BTCUSDT:1s")

    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(one_s)
        async with Collector(feed) as got:
            await wait_until_async(lambda: fake.subscribed() == {"publicTrade.BTCUSDT"})
            feed.unsubscribe(one_s)
            feed.subscribe(one_s)  # a strategy restarted: same loop turn, nothing sent upstream
            fake.push_trades("BTCUSDT", [(base + 10, "5", "1"), (base + 1_010, "6", "1")])
            await wait_until_async(lambda: got.of(one_s))
        assert [c.open_ms for c in got.of(one_s)][:1] == [base]
        assert [r.op for r in fake.subscribe_requests()] == ["subscribe"]

    _run(scenario)


def test_going_back_to_a_topic_being_retired_keeps_its_forming_candles() -> None:
    ten = CandleKey.parse("BYBIT:BTCUSDT:10m")

    async def scenario(fake: FakeBybit) -> None:
        feed = BybitFeed(_options(fake))
        feed.subscribe(ten)  # built from kline.5
        async with Collector(feed) as got:
            await wait_until_async(lambda: fake.subscribed() == {"kline.5.BTCUSDT"})
            feed.subscribe(BTC_1M)  # kline.1 takes over; kline.5 stays until it has
            await wait_until_async(lambda: len(fake.subscribed()) == 2)
            fake.push_kline("BTCUSDT", T0, "100", "104", "99", "104", "5", interval="5")
            for i in range(5):
                _minute(fake, i)
            await wait_until_async(lambda: len(got.of(BTC_1M)) == 5)
            feed.unsubscribe(BTC_1M)  # ...and back: kline.5 serves 10m alone again
            fake.push_kline(
                "BTCUSDT", T0 + 5 * MINUTE, "105", "111", "104", "110", "7", interval="5"
            )
            await wait_until_async(lambda: got.of(ten))
            await wait_until_async(lambda: fake.subscribed() == {"kline.5.BTCUSDT"})
        # The first half of the 10m candle came before the switch back: it is not lost.
        assert [(c.open_ms, c.open, c.volume) for c in got.of(ten)] == [
            (T0, Decimal(100), Decimal(12))
        ]
        ops = [(r.op, r.args) for r in fake.subscribe_requests()]
        assert ops == [
            ("subscribe", ("kline.5.BTCUSDT",)),
            ("subscribe", ("kline.1.BTCUSDT",)),
            ("unsubscribe", ("kline.1.BTCUSDT",)),
        ]

    _run(scenario)
