"""A subscriber in its own process: `python -m tests.hub.child_subscriber PUB SNAP KEY N WARMUP`.

Prints `READY` once subscribed, then one JSON line per candle, and exits 0 after N candles
(2 if they do not come within the time limit). The fork test calls `follow` directly.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import orjson

from qkt.hub import HubEndpoints, HubSubscriber
from qkt.market.models import CandleKey

TIME_LIMIT_S = 30.0


async def follow(
    endpoints: HubEndpoints, key: CandleKey, count: int, warmup: int, emit: Callable[[str], None]
) -> None:
    """Subscribe to `key` and emit `READY`, then `count` candles as JSON lines."""
    async with asyncio.timeout(TIME_LIMIT_S), HubSubscriber(endpoints) as sub:
        await sub.subscribe([key], warmup=warmup)
        emit("READY")
        seen = 0
        async for item in sub:
            line = {
                "seq": item.seq,
                "epoch": item.epoch,
                "open_ms": item.candle.open_ms,
                "close": str(item.candle.close),
                "key": str(item.key),
            }
            emit(orjson.dumps(line).decode())
            seen += 1
            if seen == count:
                return


def main(argv: list[str]) -> int:
    pub, snapshot, key, count, warmup = argv

    def emit(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(
            follow(HubEndpoints(pub, snapshot), CandleKey.parse(key), int(count), int(warmup), emit)
        )
    except TimeoutError:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
