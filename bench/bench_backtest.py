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
RUNS: Final = 3
START_MS: Final = 1_767_225_600_000
FEE: Final = Decimal("0.0006")
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
    result = run_backtest(program, path, EngineConfig(fee_bps=FEE * 10_000))
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
        cash=10_000_000,
        commission=float(FEE),
        trade_on_close=True,
        finalize_trades=True,  # the position open at the end is in the list (its exit dropped)
    )
    trades = test.run()._trades
    fills: list[Fill] = []
    for row in trades.itertuples():
        fills.append((_ms(row.EntryTime), "BUY", float(row.EntryPrice)))
        if not math.isnan(row.ExitPrice) and row.ExitTime < frame.index[-1]:
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
    cerebro.broker.setcash(10_000_000)
    cerebro.broker.setcommission(commission=float(FEE))
    cerebro.broker.set_coc(True)
    cerebro.run()
    return fills


def _ms(moment: Any) -> int:
    stamp = moment if isinstance(moment, datetime) else moment.to_pydatetime()
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def best_of(run: Callable[[], list[Fill]]) -> tuple[float, list[Fill]]:
    times, fills = [], []
    for _ in range(RUNS):
        began = time.perf_counter()
        fills = run()
        times.append(time.perf_counter() - began)
    return min(times), fills


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "BTCUSDT.csv"
        write_candles(data)
        rows = []
        qkt_time, qkt_fills = best_of(lambda: run_qkt(data))
        rows.append(("qkt (full semantics)", qkt_time, len(qkt_fills), "reference"))
        others: list[tuple[str, Callable[[Path], list[Fill]]]] = [
            ("backtesting.py", run_backtesting_py),
            ("backtrader", run_backtrader),
        ]
        for name, runner in others:
            try:
                seconds, fills = best_of(partial(runner, data))
            except ImportError as error:
                print(f"{name}: not installed ({error}); `make bench-backtest` installs it")
                continue
            same = "identical" if fills == qkt_fills else _difference(qkt_fills, fills)
            rows.append((name, seconds, len(fills), same))
        bracket_time, bracket_fills = best_of(lambda: run_qkt(data, BRACKET))
        print(f"{CANDLES:,} 1m candles, EMA(12)/EMA(26) crossover, fee 6 bps, best of {RUNS}")
        print("| engine | time | candles/s | qkt is | fills | fills vs qkt |")
        print("|---|---:|---:|---:|---:|---|")
        for name, seconds, count, same in rows:
            print(
                f"| {name} | {seconds:.2f} s | {CANDLES / seconds:,.0f} | "
                f"{seconds / qkt_time:.2f}x | {count:,} | {same} |"
            )
        print(
            f"| qkt + bracket (SL 2 %, TP 2R) | {bracket_time:.2f} s | "
            f"{CANDLES / bracket_time:,.0f} | | {len(bracket_fills):,} | (not comparable) |"
        )


def _difference(expected: list[Fill], got: list[Fill]) -> str:
    for index, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            return f"DIFFERENT at fill {index}: qkt {a}, this {b}"
    return f"DIFFERENT: {len(expected)} vs {len(got)} fills"


if __name__ == "__main__":
    main()
