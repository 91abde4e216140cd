"""CandleHub throughput against raw pyzmq, and subscriber memory: `python -m bench.bench_hub`.

1. Publish rate: candles/s the hub numbers, rings and publishes with no subscriber.
2. Fan-out to N subscriber processes (N = 1, 4, 16, 50), each case both ways in the same run:
   - raw: a plain pyzmq PUB sends the hub's own frames (topic + orjson body, pre-encoded) over
     ipc:// with the hub's SNDHWM to N plain SUB processes that `orjson.loads` every message;
   - hub: the CandleHub publishes the same candles to N HubSubscriber processes.
   Candles/s received by every subscriber, from the first candle handed over to the last
   subscriber's last candle, and hub/raw: the best of ROUNDS interleaved rounds of each side.
   Subscribers are spawned once per round and timing starts only when every one of them said
   READY (subscribed, nothing can be missed). Also the CPU time per candle of the publishing
   process (ZeroMQ's I/O thread included) and of each subscriber: where the two cores go.
3. Memory of a subscriber process: after imports, and after a warm-up of 10 keys x 2000 candles.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import zmq

from bench.hub_children import READY_TOPIC
from qkt.hub import CandleHub, HubEndpoints, wire
from qkt.hub.publisher import DEFAULT_SNDHWM
from qkt.market.feed import FeedState, FeedStatus
from qkt.market.models import Candle, CandleKey
from qkt.paths import StateDir

KEYS = [CandleKey.parse(f"SIM:SYM{i}USDT:1m") for i in range(10)]
CANDLES = 50_000  # in total, spread round-robin over KEYS
FANOUT = tuple(int(n) for n in os.environ.get("QKT_BENCH_FANOUT", "1,4,16,50").split(","))
TARGETS = {1: 0.6, 50: 0.4}  # issue 17: hub >= this x raw
ROUNDS = 3  # per case and side; the best of each is kept (load from elsewhere only slows)
WARMUP = 2000
ROOT = Path(__file__).resolve().parent.parent


class BenchFeed:
    """A CandleFeed that yields a precomputed batch of candles as fast as the hub takes them.

    It hands over a list, not a queue: what a feed costs to make candles is not the hub's cost,
    as the raw baseline's frames are made before it is timed.
    """

    def __init__(self, broker: str) -> None:
        self._broker = broker
        self._queue: asyncio.Queue[list[Candle] | None] = asyncio.Queue()

    @property
    def broker(self) -> str:
        return self._broker

    def subscribe(self, key: CandleKey) -> None:
        pass

    def unsubscribe(self, key: CandleKey) -> None:
        pass

    def push_all(self, candles: list[Candle]) -> None:
        self._queue.put_nowait(candles)

    async def candles(self) -> AsyncIterator[Candle]:
        while (batch := await self._queue.get()) is not None:
            for item in batch:
                yield item

    def status(self) -> FeedStatus:
        return FeedStatus(FeedState.LIVE, 0)

    async def aclose(self) -> None:
        self._queue.put_nowait(None)


@dataclass(frozen=True, slots=True)
class Run:
    """One fan-out case: candles/s received by every subscriber, and the children's reports."""

    rate: float
    lost: int
    reports: list[dict[str, Any]]
    pub_us: float = 0.0  # CPU of the publishing process per candle, microseconds

    @property
    def sub_us(self) -> float:
        """Mean CPU of a subscriber per candle received, microseconds."""
        cpu = sum(r["cpu"] for r in self.reports) / max(1, len(self.reports))
        return cpu / max(1, self.reports[0]["received"]) * 1e6 if self.reports else 0.0


def batch(count: int) -> list[Candle]:
    """`count` candles round-robin over KEYS, the i-th of each key opening i minutes in."""
    out = []
    for n in range(count):
        key, i = KEYS[n % len(KEYS)], n // len(KEYS)
        price = Decimal("65000.10") + i
        out.append(Candle(key, i * 60_000, price, price + 5, price - 5, price + 1, Decimal("3.5")))
    return out


def hub_frames(candles: list[Candle], epoch: int) -> list[list[bytes]]:
    """The frames the hub publishes for `candles` (seq 1, 2, ... per key)."""
    seqs = dict.fromkeys(KEYS, 0)
    out = []
    for candle in candles:
        seqs[candle.key] += 1
        out.append(wire.encode_candle(wire.SequencedCandle(candle, seqs[candle.key], epoch)))
    return out


class Children:
    """N subscriber processes spawned together; killed on exit if any is still running."""

    def __init__(self, args: list[str], count: int) -> None:
        self._args, self._count = args, count
        self.procs: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Children:
        for _ in range(self._count):
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.hub_children",
                    *self._args,
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        return self

    async def ready(self) -> None:
        """Wait until every child printed READY."""
        lines = await asyncio.gather(*(self._line(p, 300) for p in self.procs))
        assert all(line == "READY" for line in lines), lines

    async def reports(self) -> list[dict[str, Any]]:
        """Every child's final report, once each has exited."""
        lines = await asyncio.gather(*(self._line(p, 900) for p in self.procs))
        await asyncio.gather(*(p.wait() for p in self.procs))
        return [orjson.loads(line) for line in lines]

    @staticmethod
    async def _line(proc: asyncio.subprocess.Process, timeout: float) -> str:
        assert proc.stdout is not None
        return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()

    async def __aexit__(self, *exc_info: object) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
        await asyncio.gather(*(p.wait() for p in self.procs))


def measure(started: float, cpu: float, count: int, reports: list[dict[str, Any]]) -> Run:
    """The run that started at `started` (monotonic) with this process at `cpu` CPU seconds."""
    pub_us = (time.process_time() - cpu) / count * 1e6
    lost = sum(count - r["received"] for r in reports)
    last = max(r["last"] for r in reports)
    return Run(count / (last - started), lost, reports, pub_us)


async def run_raw(tmp: Path, subscribers: int, frames: list[list[bytes]]) -> Run:
    """Plain pyzmq PUB -> N plain SUB processes, the hub's frames and socket options."""
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, DEFAULT_SNDHWM)
    endpoint = f"ipc://{tmp}/raw.sock"
    pub.bind(endpoint)
    topics = orjson.dumps([wire.topic(k).decode("latin-1") for k in KEYS]).decode()
    try:
        async with Children(["raw", endpoint, topics, str(len(frames))], subscribers) as kids:
            ready = asyncio.ensure_future(kids.ready())
            while not ready.done():  # slow joiners: ping until every child heard one
                pub.send_multipart([READY_TOPIC, b"{}"])
                await asyncio.wait({ready}, timeout=0.01)
            await ready
            started, cpu = time.monotonic(), time.process_time()
            for message in frames:
                pub.send_multipart(message)
            return measure(started, cpu, len(frames), await kids.reports())
    finally:
        pub.close(linger=0)
        context.term()


async def with_hub(state: StateDir, body: Callable[[CandleHub, BenchFeed], Awaitable[Run]]) -> Run:
    feeds: dict[str, BenchFeed] = {}

    def factory(broker: str) -> BenchFeed:
        feeds[broker] = BenchFeed(broker)
        return feeds[broker]

    async with CandleHub(factory, state) as hub:
        for key in KEYS:
            hub.acquire(key)
        return await body(hub, feeds["SIM"])


async def run_hub(state: StateDir, subscribers: int, candles: list[Candle]) -> Run:
    """CandleHub -> N HubSubscriber processes."""

    async def body(hub: CandleHub, feed: BenchFeed) -> Run:
        if not subscribers:
            feed.push_all(candles)
            started = time.monotonic()
            while sum(s.seq for s in hub.stats()) < len(candles):
                await asyncio.sleep(0.001)
            return Run(len(candles) / (time.monotonic() - started), 0, [])
        args = hub_args(hub.endpoints, len(candles), 0)
        async with Children(args, subscribers) as kids:
            await kids.ready()
            feed.push_all(candles)
            started, cpu = time.monotonic(), time.process_time()
            run = measure(started, cpu, len(candles), await kids.reports())
        missed = sum(r["missed"] for r in run.reports)
        return Run(run.rate, run.lost + missed, run.reports, run.pub_us)

    return await with_hub(state, body)


async def subscriber_memory(state: StateDir) -> dict[str, Any]:
    """One subscriber that takes a full warm-up (10 keys x 2000 candles), and its memory."""

    async def body(hub: CandleHub, feed: BenchFeed) -> Run:
        feed.push_all(batch(WARMUP * len(KEYS)))
        while sum(s.seq for s in hub.stats()) < WARMUP * len(KEYS):
            await asyncio.sleep(0.01)
        async with Children(hub_args(hub.endpoints, WARMUP * len(KEYS), WARMUP), 1) as kids:
            await kids.ready()
            return Run(0.0, 0, await kids.reports())

    return (await with_hub(state, body)).reports[0]


def hub_args(endpoints: HubEndpoints, count: int, warmup: int) -> list[str]:
    keys = orjson.dumps([str(k) for k in KEYS]).decode()
    return ["hub", endpoints.pub, endpoints.snapshot, keys, str(count), str(warmup)]


async def bench() -> None:
    print(
        f"{CANDLES} candles over {len(KEYS)} keys; python {sys.version.split()[0]}, "
        f"pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}, {os.cpu_count()} cpu(s); "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    candles = batch(CANDLES)
    frames = hub_frames(candles, time.time_ns())
    with tempfile.TemporaryDirectory(prefix="qkt-bench-") as tmp:
        state = StateDir(Path(tmp))
        alone = await run_hub(state, 0, candles)
        print(
            f"subscribers= 0: hub {alone.rate:>9,.0f} candles/s published (numbered, ringed, sent)"
        )
        for n in FANOUT:
            raws, hubs = [], []
            for _ in range(ROUNDS):  # interleaved, so that both see the box's load alike
                raws.append(await run_raw(Path(tmp), n, frames))
                hubs.append(await run_hub(state, n, candles))
            raw, hub = (max(runs, key=lambda run: run.rate) for runs in (raws, hubs))
            ratio = hub.rate / raw.rate
            target = TARGETS.get(n)
            verdict = "" if target is None else f" (target >= {target}: {ratio >= target})"
            spread = ", ".join(f"{h.rate / r.rate:.2f}" for r, h in zip(raws, hubs, strict=True))
            print(
                f"subscribers={n:>2}: raw {raw.rate:>9,.0f}  hub {hub.rate:>9,.0f} candles/s "
                f"to every subscriber; hub/raw {ratio:.2f}{verdict} (each round: {spread}); "
                f"lost raw {sum(r.lost for r in raws)} hub {sum(h.lost for h in hubs)}, "
                f"repaired {sum(r['repaired'] for h in hubs for r in h.reports)}; "
                f"CPU us/candle publisher raw {raw.pub_us:.1f} hub {hub.pub_us:.1f}, "
                f"each subscriber raw {raw.sub_us:.1f} hub {hub.sub_us:.1f}"
            )
        mem = await subscriber_memory(state)
        print(
            f"subscriber memory: after imports RSS {mem['rss0']:.1f} MiB "
            f"(USS {mem['uss0']:.1f}); after a {WARMUP}x{len(KEYS)} warm-up "
            f"RSS {mem['rss1']:.1f} MiB (USS {mem['uss1']:.1f})"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    asyncio.run(bench())


if __name__ == "__main__":
    main()
