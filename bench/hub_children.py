"""The subscriber processes of `bench.bench_hub`: `python -m bench.hub_children raw|hub ARGS`.

Each prints `READY` once it is subscribed and will miss nothing, then receives `count` candles
and prints one JSON report: how many arrived, and `last`, the `time.monotonic()` of the last one
(CLOCK_MONOTONIC is one clock for every process on the box, so the parent can compare it with
its own start time). A child that waits too long gives up and reports what it has,
so that a broken run ends instead of leaving processes behind
(the parent also kills any child still running when it is done).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson
import psutil
import zmq

IDLE_S = 60.0  # raw: no message for this long ends the child
TOTAL_S = 600.0  # hub: the whole count must come within this
READY_TOPIC = b"ready"  # the raw baseline's handshake topic


def memory_mb() -> tuple[float, float]:
    """(RSS, USS) of this process in MiB."""
    info = psutil.Process().memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


def report(received: int, last: float, cpu: float, **extra: Any) -> None:
    """The one JSON line a child ends with; `cpu`: its CPU seconds from READY to the end."""
    line = {"received": received, "last": last, "cpu": cpu, **extra}
    print(orjson.dumps(line).decode(), flush=True)


def raw(endpoint: str, topics: list[bytes], count: int) -> None:
    """A plain pyzmq SUB: receive and `orjson.loads` every message, count the candles."""
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 100_000)  # as HubSubscriber
    sub.setsockopt(zmq.RCVTIMEO, int(IDLE_S * 1000))
    sub.connect(endpoint)
    for topic in topics:
        sub.subscribe(topic)
    # Subscribed last: the first READY_TOPIC message proves every candle topic reached the PUB.
    sub.subscribe(READY_TOPIC)
    received, last, cpu = 0, 0.0, 0.0
    try:
        while True:
            frames = sub.recv_multipart()
            orjson.loads(frames[1])
            if frames[0] == READY_TOPIC:
                if received == 0 and last == 0.0:
                    print("READY", flush=True)
                    cpu = time.process_time()
                    last = -1.0  # READY said once
                continue
            received += 1
            if received == count:
                last = time.monotonic()
                break
    except zmq.Again:
        pass  # idle too long: report what came
    finally:
        sub.close(linger=0)
        context.term()
    report(received, last, time.process_time() - cpu)


async def hub(pub: str, snapshot: str, keys: list[str], count: int, warmup: int) -> None:
    """A HubSubscriber on `keys`: READY after subscribe (synced, snapshot loaded), then count."""
    from qkt.hub import HubEndpoints, HubSubscriber
    from qkt.market.models import CandleKey

    rss0, uss0 = memory_mb()
    received, last = 0, 0.0
    async with HubSubscriber(HubEndpoints(pub, snapshot)) as sub:
        await sub.subscribe([CandleKey.parse(k) for k in keys], warmup=warmup)
        print("READY", flush=True)
        cpu = time.process_time()

        async def consume() -> None:
            nonlocal received, last
            async for _ in sub:
                received += 1
                if received == count:
                    last = time.monotonic()
                    return

        try:
            await asyncio.wait_for(consume(), TOTAL_S)
        except TimeoutError:
            pass
        cpu = time.process_time() - cpu
        rss1, uss1 = memory_mb()
        stats = sub.stats()
    report(
        received,
        last,
        cpu,
        rss0=rss0,
        uss0=uss0,
        rss1=rss1,
        uss1=uss1,
        missed=stats.missed,
        repaired=stats.repaired,
    )


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "raw":
        endpoint, topics, count = args
        raw(endpoint, [t.encode("latin-1") for t in orjson.loads(topics)], int(count))
    else:
        pub, snapshot, keys, count, warmup = args
        asyncio.run(hub(pub, snapshot, orjson.loads(keys), int(count), int(warmup)))
