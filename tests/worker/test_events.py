"""The event ring: numbering, paging, resume, and slow readers that never block publishing."""

from __future__ import annotations

import asyncio

import pytest

from qkt.worker.events import EventKind, EventRing


def _fill(ring: EventRing, n: int) -> None:
    for i in range(n):
        ring.publish(EventKind.LOG, {"message": f"m{i}"}, ts=1000 + i)


def test_ids_increase_and_the_ring_keeps_the_last_capacity_events() -> None:
    ring = EventRing(capacity=5)
    _fill(ring, 12)
    assert ring.last_id == 12
    assert [e.id for e in ring.latest(100)] == [8, 9, 10, 11, 12]
    assert [e.id for e in ring.since(9)] == [10, 11, 12]
    assert [e.id for e in ring.since(0, limit=2)] == [8, 9]  # older ones fell out of the ring
    assert ring.since(12) == [] and ring.latest(0) == []
    body = ring.latest(1)[0].to_json()
    assert body == {"event_id": 12, "message": "m11", "type": "log", "ts": 1011}


def test_a_body_published_as_a_call_is_made_when_the_event_is_read() -> None:
    made: list[int] = []

    def body() -> dict[str, object]:
        made.append(1)
        return {"message": "late"}

    ring = EventRing(capacity=5)
    ring.publish(EventKind.LOG, body, ts=7)
    assert made == []  # publishing alone makes nothing
    (event,) = ring.latest(1)
    assert event.to_json() == {"event_id": 1, "message": "late", "type": "log", "ts": 7}
    assert event.data == {"message": "late"} and len(made) == 2


def test_a_slow_subscriber_drops_its_oldest_events_and_publishing_never_waits() -> None:
    async def scenario() -> None:
        ring = EventRing(capacity=100, queue_size=3)
        slow, fast = ring.subscribe(), ring.subscribe()
        got_fast = []
        for i in range(10):
            ring.publish(EventKind.CANDLE, {"i": i})
            event = await fast.next_event(timeout=1)
            assert event is not None
            got_fast.append(event.id)
        assert got_fast == list(range(1, 11))
        assert slow.dropped == 7 and ring.dropped == 7
        kept = [await slow.next_event(timeout=1) for _ in range(3)]
        assert [e.id for e in kept if e is not None] == [8, 9, 10]
        assert await slow.next_event(timeout=0.01) is None  # nothing more: a timeout, not a hang

    asyncio.run(scenario())


def test_closing_the_ring_ends_every_subscription() -> None:
    async def scenario() -> None:
        ring = EventRing()
        subscription = ring.subscribe()
        waiting = asyncio.create_task(subscription.next_event())
        await asyncio.sleep(0)
        ring.close()
        assert await asyncio.wait_for(waiting, 1) is None
        assert ring.subscribers == 0
        assert ring.subscribe().closed

    asyncio.run(scenario())


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EventRing(capacity=0)
