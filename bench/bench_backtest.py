"""`qkt backtest` side by side with backtrader and backtesting.py: candles per second on the same
EMA(12)/EMA(26) crossover and the same candle CSV, in one run, and the same fills.

The strategy every engine runs: buy 1 unit when EMA(close, 12) crosses above EMA(close, 26) and
nothing is held, close it when it crosses below; market orders filled at the signal candle's
close (backtesting.py `trade_on_close=True`, backtrader `set_coc(True)`), fee 6 bps. The clock
runs from reading the CSV to the list of fills, for each engine (best of `RUNS`). The fills are
compared as (candle open time, side, price); a difference is an error, not a footnote.

qkt runs with its full semantics: Decimal book and fees, the paper broker, the equity curve and
every figure of docs/backtest.md. A second qkt figure adds a bracket (stop loss 2 %, take profit
2R) to each entry, which the other two cannot express identically.

`make bench-backtest` installs backtrader and backtesting.py into the venv first (the `bench`
extra): they are never runtime dependencies of qkt.
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Final

from qkt.dsl import compile_source
from qkt.engine import EngineConfig
from qkt.worker.backtest import run_backtest

CANDLES: Final = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 200_000
RUNS: Final = 5  # best of: a shared box steals time unevenly, even CPU time
START_MS: Final = 1_767_225_600_000
FEE: Final = Decimal("0.0006")
CASH: Final = 10_000_000  # every engine's starting balance: 1 BTC at ~65,000 is always affordable
CROSS: Final = """\
STRATEGY ema_cross VERSION 1
SYMBOLS btc = BACKTEST:BTCUSDT EVERY 1m
LET fast = EMA(btc.close, 12), slow = EMA(btc.close, 26)
RULES
    WHEN fast CROSSES ABOVE slow AND POSITION.btc == 0 THEN BUY btc SIZING 1
    WHEN fast CROSSES BELOW slow AND POSITION.btc > 0 THEN CLOSE btc
"""
BRACKET: Final = CROSS.replace(
    "SIZING 1\n", "SIZING 1 BRACKET { STOP LOSS PCT 0.02, TAKE PROFIT RR 2 }\n"
)

Fill = tuple[int, str, float]  # (candle open ms, BUY/SELL, price)


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


def run_qkt(path: Path, source: str = CROSS) -> list[Fill]:
    program = compile_source(source, "ema_cross.qkt")
    result = run_backtest(program, path, EngineConfig(balance=Decimal(CASH), fee_bps=FEE * 10_000))
    return [(f.ts - 60_000, f.side.value, float(f.price)) for f in result.fills]


def run_backtesting_py(path: Path) -> list[Fill]:
    import pandas as pd
    import talib
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame.pop("timestamp"), unit="ms")
    frame.columns = ["Open", "High", "Low", "Close", "Volume"]

    class EmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(talib.EMA, self.data.Close, 12)
            self.slow = self.I(talib.EMA, self.data.Close, 26)

        def next(self) -> None:
            if crossover(self.fast, self.slow) and not self.position:
                self.buy(size=1)
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    test = Backtest(
        frame,
        EmaCross,
        cash=CASH,
        commission=float(FEE),
        trade_on_close=True,
        finalize_trades=True,  # a position open at the end is listed, closed on the last bars;
        # that closing is not a fill of the strategy, and is dropped below
    )
    trades = test.run()._trades
    fills: list[Fill] = []
    for row in trades.itertuples():
        fills.append((_ms(row.EntryTime), "BUY", float(row.EntryPrice)))
        if not math.isnan(row.ExitPrice) and row.ExitTime < frame.index[-2]:
            fills.append((_ms(row.ExitTime), "SELL", float(row.ExitPrice)))
    return fills


def run_backtrader(path: Path) -> list[Fill]:
    import backtrader as bt

    fills: list[Fill] = []

    class EmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            fast, slow = bt.ind.EMA(period=12), bt.ind.EMA(period=26)
            self.cross = bt.ind.CrossOver(fast, slow)

        def next(self) -> None:
            if self.cross > 0 and not self.position:
                self.buy(size=1)
            elif self.cross < 0 and self.position:
                self.close()

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                moment = bt.num2date(order.executed.dt).replace(tzinfo=UTC)
                side = "BUY" if order.isbuy() else "SELL"
                fills.append((_ms(moment), side, round(order.executed.price, 1)))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(
        bt.feeds.GenericCSVData(
            dataname=str(path),
            dtformat=lambda text: datetime.fromtimestamp(int(text) / 1000, UTC).replace(
                tzinfo=None
            ),
            timeframe=bt.TimeFrame.Minutes,
            openinterest=-1,
        )
    )
    cerebro.addstrategy(EmaCross)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=float(FEE))
    cerebro.broker.set_coc(True)
    cerebro.run()
    return fills


def _ms(moment: Any) -> int:
    stamp = moment if isinstance(moment, datetime) else moment.to_pydatetime()
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "BTCUSDT.csv"
        write_candles(data)
        reference = "qkt (full semantics)"
        engines: list[tuple[str, Callable[[], list[Fill]]]] = [
            (reference, partial(run_qkt, data)),
            ("backtesting.py", partial(run_backtesting_py, data)),
            ("backtrader", partial(run_backtrader, data)),
            ("qkt + bracket (SL 2 %, TP 2R)", partial(run_qkt, data, BRACKET)),
        ]
        cpu: dict[str, list[float]] = {name: [] for name, _ in engines}
        wall: dict[str, list[float]] = {name: [] for name, _ in engines}
        fills: dict[str, list[Fill]] = {}
        # Round robin, so that a change in the machine's load touches every engine alike; CPU
        # time (this process's) as well as wall time, since a shared box steals the wall clock.
        for _ in range(RUNS):
            for name, run in engines:
                if name in fills and not cpu[name]:
                    continue  # not installed
                began, began_cpu = time.perf_counter(), time.process_time()
                try:
                    fills[name] = run()
                except ImportError as error:
                    print(f"{name}: not installed ({error}); `make bench-backtest` installs it")
                    fills[name] = []
                    continue
                cpu[name].append(time.process_time() - began_cpu)
                wall[name].append(time.perf_counter() - began)
        qkt_cpu = min(cpu[reference])
        print(f"{CANDLES:,} 1m candles, EMA(12)/EMA(26) crossover, fee 6 bps, best of {RUNS}")
        print("| engine | CPU time | candles/s (CPU) | qkt faster by | wall | fills | vs qkt |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for name, _ in engines:
            if not cpu[name]:
                continue
            best = min(cpu[name])
            if name == reference:
                same = "reference"
            elif "bracket" in name:
                same = "(not comparable)"
            elif fills[name] == fills[reference]:
                same = "identical"
            else:
                same = _difference(fills[reference], fills[name])
            ratio = "" if "bracket" in name else f"{best / qkt_cpu:.2f}x"
            print(
                f"| {name} | {best:.2f} s | {CANDLES / best:,.0f} | {ratio} | "
                f"{min(wall[name]):.2f} s | {len(fills[name]):,} | {same} |"
            )


def _difference(expected: list[Fill], got: list[Fill]) -> str:
    for index, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            return f"DIFFERENT at fill {index}: qkt {a}, this {b}"
    return f"DIFFERENT: {len(expected)} vs {len(got)} fills"


if __name__ == "__main__":
    main()
