"""Subscribers in other OS processes: spawned interpreters, and a child forked from the hub's."""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

from qkt.hub import CandleHub, HubEndpoints
from qkt.market.models import CandleKey
from qkt.paths import StateDir
from tests.helpers import PYTHON, REPO_ROOT, pid_alive, wait_until_async
from tests.hub import child_subscriber
from tests.hub.feeds import ScriptedFeeds, candle, key, run

K1M = key("BYBIT:BTCUSDT:1m")


async def _spawn(
    endpoints: HubEndpoints, k: CandleKey, count: int, warmup: int
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "tests.hub.child_subscriber",
        endpoints.pub,
        endpoints.snapshot,
        str(k),
        str(count),
        str(warmup),
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )


async def _lines(proc: asyncio.subprocess.Process) -> AsyncIterator[str]:
    assert proc.stdout is not None
    while line := await asyncio.wait_for(proc.stdout.readline(), 30):
        yield line.decode().strip()


def test_subscribers_in_two_spawned_processes_get_the_same_candles(state_root: Path) -> None:
    async def scenario() -> None:
        feeds = ScriptedFeeds()
        async with CandleHub(feeds, StateDir(state_root)) as hub:
            hub.acquire(K1M)
            for i in range(5):
                feeds["BYBIT"].push(candle(K1M, i))
            await wait_until_async(lambda: hub.stats()[0].seq == 5)
            children = [await _spawn(hub.endpoints, K1M, count=15, warmup=5) for _ in range(2)]
            try:
                streams = [_lines(child) for child in children]
                for stream in streams:
                    assert await anext(stream) == "READY"
                for i in range(5, 15):  # live, after both subscribed
                    feeds["BYBIT"].push(candle(K1M, i))
                outputs = [[orjson.loads(line) async for line in stream] for stream in streams]
                assert [await child.wait() for child in children] == [0, 0]
            finally:
                for child in children:
                    if child.returncode is None:
                        child.kill()
                        await child.wait()
            assert outputs[0] == outputs[1]
            assert [x["seq"] for x in outputs[0]] == list(range(1, 16))
            assert [x["close"] for x in outputs[0]] == [
                str(candle(K1M, i).close) for i in range(15)
            ]

    run(scenario())


def test_a_child_forked_from_the_hubs_process_subscribes_with_its_own_context(
    state_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "child.out"

    def fork_subscriber(endpoints: HubEndpoints) -> int:
        # Runs in an executor thread, so the child starts with no running event loop. The
        # parent has a live ZeroMQ context with I/O threads: exactly what the child must not
        # use. (Python 3.12+ warns about forking a threaded process; that is the point here.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            with out.open("w") as sink:

                def emit(line: str) -> None:
                    sink.write(line + "\n")
                    sink.flush()

                asyncio.run(child_subscriber.follow(endpoints, K1M, 6, 3, emit))
                code = 0
        finally:
            os._exit(code)

    async def scenario() -> None:
        feeds = ScriptedFeeds()
        async with CandleHub(feeds, StateDir(state_root)) as hub:
            hub.acquire(K1M)
            for i in range(3):
                feeds["BYBIT"].push(candle(K1M, i))
            await wait_until_async(lambda: hub.stats()[0].seq == 3)
            loop = asyncio.get_running_loop()
            pid = await loop.run_in_executor(None, fork_subscriber, hub.endpoints)
            status: list[int] = []

            def reaped() -> bool:
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    status.append(os.waitstatus_to_exitcode(code))
                return bool(done)

            try:
                await wait_until_async(lambda: out.exists() and "READY" in out.read_text())
                for i in range(3, 6):
                    feeds["BYBIT"].push(candle(K1M, i))
                await wait_until_async(reaped, timeout=30)
            finally:
                if not status and pid_alive(pid):
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
            assert status == [0]
            lines = out.read_text().splitlines()
            assert lines[0] == "READY"
            assert [orjson.loads(x)["seq"] for x in lines[1:]] == [1, 2, 3, 4, 5, 6]

    run(scenario())
