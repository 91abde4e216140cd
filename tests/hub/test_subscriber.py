"""HubSubscriber over real sockets: fan-out, late joiners, prefix safety, bad frames, gaps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
import zmq
import zmq.asyncio

from qkt.hub import (
    CandleHub,
    Gap,
    HubConfig,
    HubEndpoints,
    HubError,
    HubSubscriber,
    HubUnavailableError,
    UnknownKeyError,
    wire,
)
from qkt.hub.publisher import Publisher
from qkt.hub.snapshot import HistoryRing, SnapshotResponder
from qkt.hub.wire import SequencedCandle
from qkt.market.models import CandleKey
from qkt.paths import StateDir
from tests.helpers import wait_until_async
from tests.hub.feeds import ScriptedFeeds, candle, key, run, take
from tests.hub.proxy import DelayedProxy

K1M = key("SIM:BTCUSDT:1m")
K15M = key("SIM:BTCUSDT:15m")


@contextlib.asynccontextmanager
async def running_hub(
    state_root: Path, *keys: CandleKey
) -> AsyncIterator[tuple[CandleHub, ScriptedFeeds]]:
    feeds = ScriptedFeeds()
    async with CandleHub(feeds, StateDir(state_root)) as hub:
        for k in keys:
            hub.acquire(k)
        yield hub, feeds


def test_two_subscribers_on_one_key_get_identical_sequences(state_root: Path) -> None:
    async def scenario() -> None:
        async with (
            running_hub(state_root, K1M, K1M) as (hub, feeds),
            HubSubscriber(hub.endpoints) as a,
            HubSubscriber(hub.endpoints) as b,
        ):
            await a.subscribe([K1M])
            await b.subscribe([K1M])
            assert feeds["SIM"].calls == [("subscribe", K1M)]
            sent = [candle(K1M, i) for i in range(50)]
            for c in sent:
                feeds["SIM"].push(c)
            got_a, got_b = await take(a, 50), await take(b, 50)
            assert got_a == got_b
            assert [x.seq for x in got_a] == list(range(1, 51))
            assert [x.candle for x in got_a] == sent
            hub.release(K1M)
            hub.release(K1M)
            assert feeds["SIM"].calls == [("subscribe", K1M), ("unsubscribe", K1M)]

    run(scenario())


def test_late_joiner_gets_snapshot_then_live_without_gap_or_duplicate(state_root: Path) -> None:
    async def scenario() -> None:
        async with (
            running_hub(state_root, K1M) as (hub, feeds),
            HubSubscriber(hub.endpoints) as early,
            HubSubscriber(hub.endpoints) as late,
        ):
            await early.subscribe([K1M])
            feed = feeds["SIM"]
            for i in range(30):
                feed.push(candle(K1M, i))
            before = await take(early, 30)
            # Keep candles flowing, one per loop turn, while the late joiner subscribes: some
            # are published while its snapshot request is in flight.
            subscribed = asyncio.Event()

            async def keep_pushing() -> int:
                i = 30
                while not subscribed.is_set() or i < 90:
                    feed.push(candle(K1M, i))
                    i += 1
                    await asyncio.sleep(0)  # a turn of the loop, not a wait
                return i

            pusher = asyncio.create_task(keep_pushing())
            await late.subscribe([K1M], warmup=10)
            subscribed.set()
            total = await pusher
            reference = before + await take(early, total - 30)
            first = await take(late, 1)
            got = first + await take(late, total - first[0].seq)
            # Ten warm-up candles, then everything up to the end: no gap, no duplicate, and
            # exactly what the early subscriber saw under the same sequence numbers.
            assert got[0].seq >= 21
            assert got == reference[got[0].seq - 1 :]
            stats = late.stats()
            assert stats.buffered > 0  # candles did arrive while the snapshot was in flight
            assert stats.missed == 0 and stats.malformed == 0
            assert stats.delivered == len(got)

    run(scenario())


def test_subscribers_joining_while_the_hub_publishes_are_all_confirmed(state_root: Path) -> None:
    # The hub drives its PUB socket by hand (see Publisher): subscriptions are read when the
    # descriptor wakes the loop and after sends. Subscribers joining during a steady stream
    # must each get their sync marker in time, then every candle without a gap.
    async def scenario() -> None:
        async with running_hub(state_root, K1M) as (hub, feeds):
            stop = asyncio.Event()

            async def keep_pushing() -> None:
                i = 0
                while not stop.is_set():
                    feeds["SIM"].push(candle(K1M, i))
                    i += 1
                    await asyncio.sleep(0)  # a turn of the loop, not a wait

            pusher = asyncio.create_task(keep_pushing())
            subs = [HubSubscriber(hub.endpoints, connect_timeout_s=5) for _ in range(8)]
            try:
                await asyncio.gather(*(sub.subscribe([K1M]) for sub in subs))
                for sub in subs:
                    seqs = [item.seq for item in await take(sub, 50)]
                    assert seqs == list(range(seqs[0], seqs[0] + 50))
                    assert sub.stats().missed == 0
            finally:
                stop.set()
                await pusher
                for sub in subs:
                    await sub.aclose()

    run(scenario())


def test_warmup_delivers_the_last_n_candles_first(state_root: Path) -> None:
    async def scenario() -> None:
        async with running_hub(state_root, K1M) as (hub, feeds):
            for i in range(40):
                feeds["SIM"].push(candle(K1M, i))
            await wait_until_async(lambda: hub.stats()[0].seq == 40)
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([K1M], warmup=25)
                feeds["SIM"].push(candle(K1M, 40))
                got = await take(sub, 26)
                assert [x.seq for x in got] == list(range(16, 42))
                assert [x.candle for x in got] == [candle(K1M, i) for i in range(15, 41)]
            async with HubSubscriber(hub.endpoints) as none:
                await none.subscribe([K1M], warmup=0)  # only what comes next
                feeds["SIM"].push(candle(K1M, 41))
                assert [x.seq for x in await take(none, 1)] == [42]

    run(scenario())


def test_subscribers_of_1m_never_see_15m_or_1mo_like_topics(state_root: Path) -> None:
    async def scenario() -> None:
        async with running_hub(state_root, K1M, K15M) as (hub, feeds):
            ctx = zmq.asyncio.Context()
            raw_sub = ctx.socket(zmq.SUB)
            raw_sub.linger = 0
            intruder = ctx.socket(zmq.PUB)  # publishes topics the hub never would
            intruder.linger = 0
            intruder.bind("tcp://127.0.0.1:*")
            try:
                raw_sub.connect(hub.endpoints.pub)
                raw_sub.connect(intruder.getsockopt_string(zmq.LAST_ENDPOINT))
                raw_sub.subscribe(wire.topic(K1M))
                async with HubSubscriber(hub.endpoints) as sub:
                    await sub.subscribe([K1M])
                    for i in range(5):
                        feeds["SIM"].push(candle(K15M, i))
                        feeds["SIM"].push(candle(K1M, i))
                    assert {x.key for x in await take(sub, 5)} == {K1M}
                # Repeat the intruder's topics until a final 1m message shows its pipe is live;
                # per-pipe order means the ones before it were filtered, not still on the way.
                bad = [
                    b"candle.SIM.BTCUSDT.1mo\x00",
                    b"candle.SIM.BTCUSDT.1m5s\x00",
                    b"candle.SIM.BTCUSDT.1",
                    b"candle.SIM.BTCUSDT.15m\x00",
                ]
                end = [wire.topic(K1M), b"end"]

                async def intruder_heard() -> bool:
                    for topic in bad:
                        await intruder.send_multipart([topic, b"{}"])
                    await intruder.send_multipart(end)
                    return await raw_sub.poll(50) != 0

                await wait_until_async(intruder_heard)
                topics = []
                while await raw_sub.poll(50):
                    frames = await raw_sub.recv_multipart()
                    topics.append(frames[0])
                    if frames == end:
                        break
                # The raw socket also got the hub's 1m candles and sync markers, nothing else.
                assert topics and set(topics) == {wire.topic(K1M)}
            finally:
                raw_sub.close()
                intruder.close()
                ctx.term()

    run(scenario())


class HandDrivenHub:
    """A hub made of its real parts, driven by hand so a test can inject faults on the wire."""

    def __init__(self, k: CandleKey, history: int) -> None:
        self.ctx = zmq.asyncio.Context()
        self.ring = HistoryRing(history, epoch=7)
        self.publisher = Publisher(self.ctx)
        self.responder = SnapshotResponder(
            self.ctx, lambda asked: self.ring if asked == k else None
        )
        self.endpoints = HubEndpoints(
            self.publisher.bind("tcp://127.0.0.1:*"), self.responder.bind("tcp://127.0.0.1:*")
        )
        self.publisher.start()
        self.responder.start()
        self.key = k
        self.count = 0

    async def publish(self, *, send: bool = True) -> SequencedCandle:
        item = self.ring.add(candle(self.key, self.count))
        self.count += 1
        if send:
            self.publisher.send(wire.encode_candle(item))
        return item

    async def aclose(self) -> None:
        await self.publisher.aclose()
        await self.responder.aclose()
        self.ctx.term()


@contextlib.asynccontextmanager
async def hand_driven(
    history: int, on_gap: Callable[[Gap], None] | None = None
) -> AsyncIterator[tuple[HandDrivenHub, HubSubscriber]]:
    """A hand-driven hub on K1M and a subscriber that follows it."""
    hub = HandDrivenHub(K1M, history=history)
    try:
        async with HubSubscriber(hub.endpoints, on_gap=on_gap) as sub:
            await sub.subscribe([K1M])
            yield hub, sub
    finally:
        await hub.aclose()


def test_malformed_frames_are_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with hand_driven(100) as (hub, sub):
            first = await hub.publish()
            topic = wire.topic(K1M)
            good = wire.encode_candle(SequencedCandle(candle(K1M, 1), 2, 7))
            for frames in (
                [topic, b"\xff not json"],
                [topic, orjson.dumps({**orjson.loads(good[1]), "v": 99})],
                [topic],
                [topic, good[1], b"extra"],
                [topic, wire.encode_candle(SequencedCandle(candle(K15M, 0), 1, 7))[1]],
            ):
                hub.publisher.send(frames)
            second = await hub.publish()
            assert await take(sub, 2) == [first, second]
            # Four: the one-frame message and the three-frame one after it are one bad
            # read (the subscriber reads a message's two frames without asking the socket
            # where it ends, then skips to the next message's start).
            assert sub.stats().malformed == 4

    run(scenario())
    assert "malformed frame skipped (unsupported wire version 99" in caplog.text


def test_a_candle_read_past_a_one_frame_message_is_repaired_not_lost() -> None:
    async def scenario() -> None:
        async with hand_driven(100) as (hub, sub):
            first = await hub.publish()
            hub.publisher.send([wire.topic(K1M)])  # a message of one frame
            second = await hub.publish()  # its topic is misread as the payload above
            third = await hub.publish()
            assert await take(sub, 3) == [first, second, third]
            stats = sub.stats()
            assert (stats.malformed, stats.repaired, stats.missed) == (1, 1, 0)

    run(scenario())


def test_a_gap_is_repaired_from_the_history_ring() -> None:
    async def scenario() -> None:
        async with hand_driven(100) as (hub, sub):
            sent = [await hub.publish(), await hub.publish()]
            sent += [await hub.publish(send=False) for _ in range(3)]  # lost on the way
            sent += [await hub.publish(), await hub.publish()]
            assert await take(sub, 7) == sent
            stats = sub.stats()
            assert (stats.repaired, stats.missed) == (3, 0)

    run(scenario())


def test_a_gap_older_than_the_ring_is_reported_not_hidden(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        gaps: list[Gap] = []
        async with hand_driven(4, gaps.append) as (hub, sub):
            await hub.publish()  # seq 1
            for _ in range(8):
                await hub.publish(send=False)  # seqs 2..9 lost on the way
            await hub.publish()  # seq 10; the ring now holds 7..10
            got = await take(sub, 5)
            assert [x.seq for x in got] == [1, 7, 8, 9, 10]
            assert gaps == [Gap(K1M, first_seq=2, last_seq=6, epoch=7)]
            assert sub.stats().missed == 5

    run(scenario())
    assert "SIM:BTCUSDT:1m lost 5 candle(s), seq 2..6" in caplog.text


def test_a_key_released_and_acquired_again_is_followed_anew(state_root: Path) -> None:
    async def scenario() -> None:
        async with (
            running_hub(state_root, K1M) as (hub, feeds),
            HubSubscriber(hub.endpoints) as sub,
        ):
            await sub.subscribe([K1M])
            feeds["SIM"].push(candle(K1M, 0))
            (old,) = await take(sub, 1)
            hub.release(K1M)
            hub.acquire(K1M)  # a new life: seq starts over under a new epoch
            feeds["SIM"].push(candle(K1M, 1))
            feeds["SIM"].push(candle(K1M, 2))
            new = await take(sub, 2)
            assert [x.seq for x in new] == [1, 2]
            assert new[0].epoch == new[1].epoch > old.epoch
            assert sub.stats().missed == 0

    run(scenario())


def test_no_hub_is_a_clear_error_after_a_bounded_wait(tmp_path: Path) -> None:
    async def scenario() -> None:
        nowhere = HubEndpoints(f"ipc://{tmp_path}/no.sock", f"ipc://{tmp_path}/no-snap.sock")
        async with HubSubscriber(nowhere, connect_timeout_s=0.3) as sub:
            with pytest.raises(HubUnavailableError, match=r"no CandleHub answered at ipc://"):
                await sub.subscribe([K1M])

    run(scenario())


def test_a_key_the_hub_does_not_carry_is_a_clear_error(state_root: Path) -> None:
    async def scenario() -> None:
        async with (
            running_hub(state_root, K1M) as (hub, _),
            HubSubscriber(hub.endpoints) as sub,
        ):
            with pytest.raises(UnknownKeyError, match="does not carry SIM:BTCUSDT:15m"):
                await sub.subscribe([K15M])
            await sub.subscribe([K1M])  # the subscriber is still usable

    run(scenario())


def test_one_subscriber_follows_several_keys_in_one_loop_with_its_hub(state_root: Path) -> None:
    async def scenario() -> None:
        async with running_hub(state_root, K1M, K15M) as (hub, feeds):
            async with HubSubscriber(hub.endpoints) as sub:
                await sub.subscribe([K1M, K15M])
                for i in range(3):
                    feeds["SIM"].push(candle(K1M, i))
                    feeds["SIM"].push(candle(K15M, i))
                got = await take(sub, 6)
                for k in (K1M, K15M):
                    assert [x.seq for x in got if x.key == k] == [1, 2, 3]
                sub.unsubscribe([K15M])
            async with HubSubscriber(hub.endpoints) as done:
                await done.subscribe([K1M])
            # Closed subscribers end their iteration.
            assert [x async for x in done] == []

    run(scenario())


def test_the_first_candle_after_subscribe_is_never_lost_to_a_slow_join(state_root: Path) -> None:
    # The SUB connection reaches the hub 0.3 s late (a proxy holds it), the snapshot socket at
    # once. Were the snapshot taken before the subscription is live, a candle published right
    # after subscribe() would go to nobody, and gap repair would only notice at the next one:
    # an hour late on a 1h key. subscribe() returns only once the hub confirmed the subscription.
    async def scenario() -> None:
        feeds = ScriptedFeeds()
        config = HubConfig(transport="tcp")
        async with CandleHub(feeds, StateDir(state_root), config) as hub:
            hub.acquire(K1M)
            async with DelayedProxy(hub.endpoints.pub, delay_s=0.3) as proxy:
                endpoints = HubEndpoints(proxy.endpoint, hub.endpoints.snapshot)
                async with HubSubscriber(endpoints) as sub:
                    await sub.subscribe([K1M])
                    feeds["SIM"].push(candle(K1M, 0))
                    (got,) = await take(sub, 1, timeout=5)
                    assert got.seq == 1

    run(scenario())


def test_a_slow_consumer_pauses_the_reader_without_losing_or_blocking(state_root: Path) -> None:
    async def scenario() -> None:
        async with (
            running_hub(state_root, K1M, K15M) as (hub, feeds),
            HubSubscriber(hub.endpoints, max_buffered=5) as sub,
        ):
            await sub.subscribe([K1M])
            for i in range(50):
                feeds["SIM"].push(candle(K1M, i))
            await wait_until_async(lambda: hub.stats()[1].seq == 50)  # sorted: 15m, 1m
            # Nobody consumes yet: the reader stops at 5 queued candles. A new key must
            # still get through its subscription handshake.
            await sub.subscribe([K15M], warmup=0)
            feeds["SIM"].push(candle(K15M, 0))
            got = await take(sub, 51)
            assert [x.seq for x in got if x.key == K1M] == list(range(1, 51))
            assert [x.seq for x in got if x.key == K15M] == [1]
            assert sub.stats().missed == 0

    run(scenario())


def test_a_gap_whose_repair_gets_no_answer_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        hub = HandDrivenHub(K1M, history=100)
        gaps: list[Gap] = []
        try:
            async with HubSubscriber(
                hub.endpoints, request_timeout_s=0.3, on_gap=gaps.append
            ) as sub:
                await sub.subscribe([K1M])
                await hub.publish()
                await hub.responder.aclose()  # the snapshot side stops answering
                await hub.publish(send=False)
                last = await hub.publish()
                got = await take(sub, 2)
                assert [x.seq for x in got] == [1, 3] and got[1] == last
                assert gaps == [Gap(K1M, 2, 2, epoch=7)]
        finally:
            await hub.aclose()

    run(scenario())
    assert "lost 1 candle(s), seq 2..2: the repair request timed out" in caplog.text


def test_a_consumer_gets_the_warmup_then_every_candle_in_order_until_closed(
    state_root: Path,
) -> None:
    # consume(): the same candles as `async for`, handed over in the reader's callback,
    # a repaired gap among them; it returns once the subscriber is closed.
    async def scenario() -> None:
        async with running_hub(state_root, K1M) as (hub, feeds):
            for i in range(10):
                feeds["SIM"].push(candle(K1M, i))
            await wait_until_async(lambda: hub.stats()[0].seq == 10)
            sub = HubSubscriber(hub.endpoints)
            await sub.subscribe([K1M], warmup=4)
            got: list[SequencedCandle] = []
            consuming = asyncio.create_task(sub.consume(got.append))
            for i in range(10, 30):
                feeds["SIM"].push(candle(K1M, i))
            await wait_until_async(lambda: len(got) == 24)
            assert [x.seq for x in got] == list(range(7, 31))
            assert [x.snapshot for x in got] == [True] * 4 + [False] * 20
            assert [x.candle for x in got] == [candle(K1M, i) for i in range(6, 30)]
            assert not consuming.done()
            await sub.aclose()
            await asyncio.wait_for(consuming, 5)  # returns: closed

    run(scenario())


def test_a_consumer_that_raises_ends_consume_with_its_error_and_gets_nothing_more() -> None:
    async def scenario() -> None:
        async with hand_driven(100) as (hub, sub):
            got: list[int] = []

            def consumer(item: SequencedCandle) -> None:
                got.append(item.seq)
                if item.seq == 2:
                    raise OSError(28, "No space left on device")

            consuming = asyncio.create_task(sub.consume(consumer))
            for _ in range(4):
                await hub.publish()
            with pytest.raises(OSError, match="No space left"):
                await asyncio.wait_for(consuming, 5)
            await hub.publish()
            await wait_until_async(lambda: sub.stats().delivered == 5)  # read, not handed over
            assert got == [1, 2]

    run(scenario())


def test_a_reader_that_stops_ends_consume_with_a_hub_error() -> None:
    async def scenario() -> None:
        async with hand_driven(100) as (hub, sub):
            got: list[SequencedCandle] = []
            consuming = asyncio.create_task(sub.consume(got.append))
            await hub.publish()
            await wait_until_async(lambda: len(got) == 1)
            sub._fail(RuntimeError("the socket broke"))  # as the reader does on an error
            with pytest.raises(HubError, match="reader stopped: RuntimeError"):
                await asyncio.wait_for(consuming, 5)
            with pytest.raises(HubError, match="reader stopped"):
                await sub.consume(got.append)  # and says so to a consumer that comes later

    run(scenario())
