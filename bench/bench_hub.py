"""CandleHub throughput and subscriber memory: `python -m bench.bench_hub` (or `make bench`).

1. Publish rate: candles/s the hub numbers, rings and publishes with no subscriber.
2. Fan-out: the same with N subscriber processes on every key; candles/s until the last
   subscriber has received every candle.
3. Memory of a subscriber process: after imports, and after a warm-up of 10 keys x 2000 candles.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import orjson
import psutil

from qkt.hub import CandleHub, HubEndpoints, HubSubscriber
from qkt.market.feed import FeedState, FeedStatus
from qkt.market.models import Candle, CandleKey
from qkt.paths import StateDir

KEYS = [CandleKey.parse(f"SIM:SYM{i}USDT:1m") for i in range(10)]
CANDLES = 50_000  # in total, spread round-robin over KEYS
FANOUT = (1, 4, 16)
WARMUP = 2000


class BenchFeed:
    """A CandleFeed that yields a precomputed batch of candles as fast as the hub takes them."""

    def __init__(self, broker: str) -> None:
        self._broker = broker
        self._queue: asyncio.Queue[Candle | None] = asyncio.Queue()

    @property
    def broker(self) -> str:
        return self._broker

    def subscribe(self, key: CandleKey) -> None:
        pass

    def unsubscribe(self, key: CandleKey) -> None:
        pass

    def push_all(self, candles: list[Candle]) -> None:
        for item in candles:
            self._queue.put_nowait(item)

    async def candles(self) -> AsyncIterator[Candle]:
        while (item := await self._queue.get()) is not None:
            yield item

    def status(self) -> FeedStatus:
        return FeedStatus(FeedState.LIVE, 0)

    async def aclose(self) -> None:
        self._queue.put_nowait(None)


def batch(count: int) -> list[Candle]:
    """`count` candles round-robin over KEYS, the i-th of each key opening i minutes in."""
    out = []
    for n in range(count):
        key, i = KEYS[n % len(KEYS)], n // len(KEYS)
        price = Decimal("65000.10") + i
        out.append(Candle(key, i * 60_000, price, price + 5, price - 5, price + 1, Decimal("3.5")))
    return out


def memory_mb() -> tuple[float, float]:
    """(RSS, USS) of this process in MiB."""
    info = psutil.Process().memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


async def child(pub: str, snapshot: str, count: int, warmup: int) -> None:
    """Subscriber process: READY, then receive `count` candles (after warm-up), report, exit."""
    rss0, uss0 = memory_mb()
    async with HubSubscriber(HubEndpoints(pub, snapshot)) as sub:
        await sub.subscribe(KEYS, warmup=warmup)
        print("READY", flush=True)
        seen = 0
        async for _ in sub:
            seen += 1
            if seen == count:
                break
        rss1, uss1 = memory_mb()
        stats = sub.stats()
        report = {
            "rss0": rss0,
            "uss0": uss0,
            "rss1": rss1,
            "uss1": uss1,
            "missed": stats.missed,
            "repaired": stats.repaired,
        }
        print(orjson.dumps(report).decode(), flush=True)


async def spawn(endpoints: HubEndpoints, count: int, warmup: int) -> asyncio.subprocess.Process:
    root = Path(__file__).resolve().parent.parent
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_hub",
        "child",
        endpoints.pub,
        endpoints.snapshot,
        str(count),
        str(warmup),
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=asyncio.subprocess.PIPE,
    )


async def read_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), 120)).decode().strip()


async def run_fanout(state: StateDir, subscribers: int) -> tuple[float, list[dict[str, float]]]:
    """Seconds to publish CANDLES and have every subscriber receive them; child reports."""
    feeds: dict[str, BenchFeed] = {}

    def factory(broker: str) -> BenchFeed:
        feeds[broker] = BenchFeed(broker)
        return feeds[broker]

    async with CandleHub(factory, state) as hub:
        for key in KEYS:
            hub.acquire(key)
        children = [await spawn(hub.endpoints, CANDLES, 0) for _ in range(subscribers)]
        try:
            for proc in children:
                assert await read_line(proc) == "READY"
            candles = batch(CANDLES)
            started = time.perf_counter()
            feeds["SIM"].push_all(candles)
            if not children:
                while sum(s.seq for s in hub.stats()) < CANDLES:
                    await asyncio.sleep(0.001)
            reports = [orjson.loads(await read_line(proc)) for proc in children]
            elapsed = time.perf_counter() - started
            for proc in children:
                await proc.wait()
        finally:
            for proc in children:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        if subscribers == max(FANOUT):
            # Memory of one more subscriber that takes a full warm-up: 10 keys x 2000 candles.
            proc = await spawn(hub.endpoints, WARMUP * len(KEYS), WARMUP)
            try:
                assert await read_line(proc) == "READY"
                reports.append(orjson.loads(await read_line(proc)))
            finally:
                await proc.wait()
    return elapsed, reports


async def bench() -> None:
    print(
        f"{CANDLES} candles over {len(KEYS)} keys; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cpu(s)"
    )
    with tempfile.TemporaryDirectory(prefix="qkt-bench-") as tmp:
        state = StateDir(Path(tmp))
        for n in (0, *FANOUT):
            elapsed, reports = await run_fanout(state, n)
            rate = CANDLES / elapsed
            if n == 0:
                line = f"subscribers= 0: {rate:>9,.0f} candles/s published (numbered, ringed, sent)"
            else:
                lost = sum(r["missed"] for r in reports[:n])
                repaired = sum(r["repaired"] for r in reports[:n])
                line = (
                    f"subscribers={n:>2}: {rate:>9,.0f} candles/s received by every subscriber "
                    f"({rate * n:,.0f} deliveries/s; missed {lost}, repaired {repaired})"
                )
            print(line)
            if n == max(FANOUT):
                mem = reports[-1]
                print(
                    f"subscriber memory: after imports RSS {mem['rss0']:.1f} MiB "
                    f"(USS {mem['uss0']:.1f}); after a {WARMUP}x{len(KEYS)} warm-up "
                    f"RSS {mem['rss1']:.1f} MiB (USS {mem['uss1']:.1f})"
                )


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    asyncio.run(bench())


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        pub, snap, count, warmup = sys.argv[2:]
        asyncio.run(child(pub, snap, int(count), int(warmup)))
    else:
        main()
