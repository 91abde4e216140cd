"""A CandleHub on the simulated market in its own process, for worker tests.

`python -m tests.worker.hub_host STATE_DIR SPEED KEY...` starts a hub (tcp), acquires the keys,
prints one JSON line `{"pub": ..., "snapshot": ...}` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import orjson

from qkt.hub import CandleHub, HubConfig
from qkt.market.feed import FeedOptions
from qkt.market.models import CandleKey
from qkt.market.registry import open_feed
from qkt.paths import StateDir


async def serve(state_dir: str, speed: float, keys: list[str]) -> None:
    options = FeedOptions(seed=7, speed=speed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    hub = CandleHub(
        lambda broker: open_feed(broker, options),
        StateDir.resolve(state_dir),
        HubConfig(transport="tcp"),
    )
    async with hub:
        for key in keys:
            hub.acquire(CandleKey.parse(key))
        print(orjson.dumps(hub.endpoints.to_json()).decode(), flush=True)
        await stop.wait()


def main(argv: list[str]) -> int:
    state_dir, speed, *keys = argv
    asyncio.run(serve(state_dir, float(speed), keys))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
