"""Memory of one worker process (`python -m qkt.worker SPEC`, a plain spawn) on the simulated
market: RSS, USS and PSS once it is ready, and again after it has traded for a while. Also the
memory of `qkt run` (worker and its own hub in one process) for comparison.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import psutil

from qkt.hub import CandleHub, HubConfig
from qkt.market.feed import FeedOptions
from qkt.market.models import CandleKey
from qkt.market.registry import open_feed
from qkt.paths import StateDir
from qkt.worker.spec import WorkerSpec

STRATEGY: Final = """\
STRATEGY ema_cross VERSION 2
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
LET fast = EMA(btc.close, 12), slow = EMA(btc.close, 26)
RULES
    WHEN fast CROSSES ABOVE slow AND POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN fast CROSSES BELOW slow AND POSITION.btc > 0 THEN CLOSE btc
"""
RUN_FOR_S: Final = 10.0  # wall seconds of trading before the second reading
SPEED: Final = 30.0


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _reading(pid: int) -> str:
    info = psutil.Process(pid).memory_full_info()
    return f"RSS {_mib(info.rss)}, USS {_mib(info.uss)}, PSS {_mib(info.pss)}"


async def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear in {timeout}s")
        await asyncio.sleep(0.05)


async def _worker(root: Path) -> None:
    state = StateDir(root)
    options = FeedOptions(seed=3, speed=SPEED)
    async with CandleHub(lambda b: open_feed(b, options), state, HubConfig(transport="tcp")) as hub:
        hub.acquire(CandleKey.parse("SIM:BTCUSDT:1s"))
        strategy = root / "ema.qkt"
        strategy.write_text(STRATEGY)
        spec = WorkerSpec(
            name="ema",
            file=str(strategy),
            state_dir=str(root),
            hub_pub=hub.endpoints.pub,
            hub_snapshot=hub.endpoints.snapshot,
            parent_pid=os.getpid(),
        )
        began = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qkt.worker", spec.to_json().decode()
        )
        try:
            await _wait_for(spec.port_file)
            print(f"python -m qkt.worker: ready in {time.perf_counter() - began:.2f} s")
            print(f"  after start: {_reading(proc.pid)}")
            await asyncio.sleep(RUN_FOR_S)
            print(f"  after {RUN_FOR_S:g} s of trading at speed {SPEED:g}: {_reading(proc.pid)}")
        finally:
            proc.terminate()
            await proc.wait()


async def _run_command(root: Path) -> None:
    strategy = root / "ema.qkt"
    strategy.write_text(STRATEGY)
    port_file = root / "port"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qkt",
        "run",
        str(strategy),
        "--state-dir",
        str(root / "state"),
        "--port-file",
        str(port_file),
        "--speed",
        str(SPEED),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_for(port_file)
        print(f"qkt run (worker + its own hub): {_reading(proc.pid)}")
    finally:
        proc.terminate()
        await proc.wait()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="qkt-") as folder:
        asyncio.run(_worker(Path(folder)))
    with tempfile.TemporaryDirectory(prefix="qkt-") as folder:
        asyncio.run(_run_command(Path(folder)))


if __name__ == "__main__":
    main()
