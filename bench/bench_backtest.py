"""`qkt backtest` on 100,000 one-minute candles: candles per second through `run_backtest`
(replay + engine + summary figures), and the whole command's wall time as a user runs it.

Strategy: dsl.md's EMA(12)/EMA(26) crossover with a bracket and an opposite-cross exit, on a
seeded random walk written as a 1m candle CSV, fee 6 bps.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Final

from qkt.dsl import compile_source
from qkt.engine import EngineConfig
from qkt.worker.backtest import run_backtest

CANDLES: Final = 100_000
START_MS: Final = 1_767_225_600_000
STRATEGY: Final = """\
STRATEGY ema_cross VERSION 2
SYMBOLS btc = BACKTEST:BTCUSDT EVERY 1m
LET fast = EMA(btc.close, 12), slow = EMA(btc.close, 26)
RULES
    WHEN fast CROSSES ABOVE slow AND POSITION.btc == 0
    THEN BUY btc SIZING 0.01 BRACKET { STOP LOSS PCT 0.02, TAKE PROFIT RR 2 }
    WHEN fast CROSSES BELOW slow AND POSITION.btc > 0
    THEN CLOSE btc
"""


def write_candles(path: Path, count: int = CANDLES, seed: int = 1) -> None:
    """A seeded random walk with a slow swing as a 1m candle CSV."""
    rng = random.Random(seed)
    price = 65_000.0
    previous = Decimal("65000.0")
    with path.open("w") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        for i in range(count):
            price *= math.exp(rng.gauss(0, 0.0008) + 0.0003 * math.sin(i / 40))
            close = Decimal(f"{price:.1f}")
            high = max(previous, close) + Decimal("3.5")
            low = min(previous, close) - Decimal("3.5")
            out.write(f"{START_MS + i * 60_000},{previous},{high},{low},{close},1.25\n")
            previous = close


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "BTCUSDT.csv"
        write_candles(data)
        program = compile_source(STRATEGY, "ema_cross.qkt")
        config = EngineConfig(fee_bps=Decimal(6))
        runs = []
        for _ in range(3):
            began = time.perf_counter()
            result = run_backtest(program, data, config)
            runs.append(time.perf_counter() - began)
        best = min(runs)
        print(
            f"run_backtest: {result.candles:,} candles, {result.summary.trades:,} fills; "
            f"best of 3 {best:.2f} s = {result.candles / best:,.0f} candles/s "
            f"(runs: {', '.join(f'{r:.2f}' for r in runs)} s)"
        )
        strategy = Path(folder) / "ema_cross.qkt"
        strategy.write_text(STRATEGY)
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "qkt", "backtest", str(strategy), "--data", str(data), "--json"],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - began
        print(f"qkt backtest --json (whole command, start-up included): {wall:.2f} s")


if __name__ == "__main__":
    main()
