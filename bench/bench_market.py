"""Market data speed: replaying 100,000 one-minute candles, and the simulated market's trades/s."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Final

from qkt.market.aggregate import CandleAggregator
from qkt.market.models import CandleKey, Timeframe
from qkt.market.replay import replay_candles
from qkt.market.simulated import Walk

ROWS: Final = 100_000
T0: Final = 1_767_225_600_000
SIM_SECONDS: Final = 6 * 3_600


def _write_minutes(path: Path) -> None:
    with path.open("w") as handle:
        handle.write("timestamp,open,high,low,close,volume\n")
        for i in range(ROWS):
            p = 60_000 + i % 500
            handle.write(f"{T0 + i * 60_000},{p}.5,{p + 3}.25,{p - 2}.75,{p + 1}.5,1.234\n")


def bench_replay() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "BTCUSDT.csv"
        _write_minutes(path)
        for keys in (["1m"], ["1m", "5m", "1h"]):
            started = time.perf_counter()
            count = sum(
                1
                for _ in replay_candles(
                    path, [CandleKey.parse(f"BACKTEST:BTCUSDT:{k}") for k in keys]
                )
            )
            elapsed = time.perf_counter() - started
            print(
                f"replay {ROWS:,} 1m rows as {'+'.join(keys)}: {count:,} candles in "
                f"{elapsed:.2f} s = {ROWS / elapsed:,.0f} rows/s"
            )


def bench_simulated() -> None:
    walk = Walk(0, "BTCUSDT", T0)
    started = time.perf_counter()
    trades = walk.trades_until(T0 + SIM_SECONDS * 1000)
    generated = time.perf_counter() - started
    aggregator = CandleAggregator("SIM", "BTCUSDT")
    for text in ("1s", "1m", "5m"):
        aggregator.add_timeframe(Timeframe.parse(text), since_ms=T0)
    started = time.perf_counter()
    for ts, price, size in trades:
        aggregator.on_trade(ts, price, size)
    aggregated = time.perf_counter() - started
    print(
        f"SimulatedFeed walk: {len(trades):,} trades in {generated:.2f} s = "
        f"{len(trades) / generated:,.0f} trades/s generated"
    )
    print(
        f"aggregation into 1s+1m+5m: {len(trades) / aggregated:,.0f} trades/s; together "
        f"{len(trades) / (generated + aggregated):,.0f} trades/s = "
        f"{len(trades) / (generated + aggregated) / 300:,.0f} symbols at speed 30"
    )


def main() -> None:
    bench_replay()
    bench_simulated()


if __name__ == "__main__":
    main()
