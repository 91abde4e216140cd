"""`run_backtest`: history straight into `StrategyEngine.on_candle`, and the figures of the run.

No hub, no ZeroMQ, no status server, no sleeping: `replay_candles` yields closed candles in close
order and the engine trades on each, exactly as a live worker would (fills at the close by
default). How the summary is defined:

- `trades`: the number of fills.
- `realized`: realized PnL at the end, fees included (every fee is a realized loss when paid).
- `unrealized`: open positions marked at their symbols' last close.
- `total_pnl` = realized + unrealized; `equity` = starting balance + total_pnl.
- `max_drawdown`: the largest fall of equity below its running peak, on the equity curve sampled
  after every candle, the starting balance being the first peak; an amount of money.
  `max_drawdown_pct` is that fall as a fraction of the peak it fell from.
- `win_rate`: among *closing* fills (those that reduce or close a position, flips included), the
  fraction whose realized PnL, fee included, is above zero; null when nothing was closed.
- `sharpe`: the annualised Sharpe ratio of daily returns, risk-free rate 0. A day's return is its
  last equity over the previous day's (the first day's over the starting balance) minus 1, days
  being UTC calendar days that had candles; sharpe = mean / sample standard deviation * sqrt(365)
  (crypto trades every day). Null with fewer than two days or no variation.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from qkt.dsl import Program
from qkt.engine import EngineConfig, Fill, Order, Side, SignalEvent, StrategyEngine
from qkt.market.replay import replay_candles
from qkt.money import CONTEXT, ZERO, to_str

DAY_MS: Final = 86_400_000
TRADING_DAYS: Final = 365
PCT_STEP: Final = Decimal("0.00000001")
PROGRESS_EVERY: Final = 1_000  # candles between two progress callbacks

Progress = Callable[[int, int, int], None]  # (candles so far, fills so far, last close ms)


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    """The figures of a run; see the module docstring for their definitions."""

    trades: int
    start_balance: Decimal
    realized: Decimal
    unrealized: Decimal
    total_pnl: Decimal
    equity: Decimal
    fees: Decimal
    max_drawdown: Decimal
    max_drawdown_pct: Decimal
    win_rate: float | None
    sharpe: float | None

    def to_json(self) -> dict[str, Any]:
        """spec.md's summary object (money as exact decimal strings), plus a few more fields."""
        return {
            "trades": self.trades,
            "realized": to_str(self.realized),
            "unrealized": to_str(self.unrealized),
            "total_pnl": to_str(self.total_pnl),
            "equity": to_str(self.equity),
            "max_drawdown": to_str(self.max_drawdown),
            "win_rate": self.win_rate,
            "sharpe": self.sharpe,
            "start_balance": to_str(self.start_balance),
            "fees": to_str(self.fees),
            "max_drawdown_pct": to_str(self.max_drawdown_pct.quantize(PCT_STEP)),
        }


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What `qkt backtest` reports."""

    strategy: str
    version: int
    candles: int
    fills: tuple[Fill, ...]
    summary: BacktestSummary

    def to_json(self) -> dict[str, Any]:
        """spec.md's `qkt backtest --json` object."""
        return {
            "strategy": self.strategy,
            "version": self.version,
            "candles": self.candles,
            "trades": [trade_json(fill) for fill in self.fills],
            "summary": self.summary.to_json(),
        }


def trade_json(fill: Fill) -> dict[str, Any]:
    """spec.md's trade fields: `ts side symbol qty price fee realized`."""
    return {
        "ts": fill.ts,
        "side": fill.side.value,
        "symbol": fill.instrument.symbol,
        "qty": to_str(fill.qty),
        "price": to_str(fill.price),
        "fee": to_str(fill.fee),
        "realized": to_str(fill.realized),
    }


class _Recorder:
    """The engine's Journal for a backtest: keeps fills, ignores orders and signals."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []

    def record_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def record_order(self, order: Order) -> None:
        pass

    def record_signal(self, signal: SignalEvent) -> None:
        pass


def run_backtest(
    program: Program,
    data: Path,
    config: EngineConfig,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Replay `data` for the program's keys in `[start_ms, end_ms)` through a fresh engine.

    Raises UserError for missing or malformed data (from `replay_candles`).
    """
    recorder = _Recorder()
    engine = StrategyEngine(program, config, recorder)
    peak = config.balance
    max_drawdown = max_drawdown_pct = ZERO
    day_close: dict[int, Decimal] = {}  # UTC day -> equity after its last candle
    candles = 0
    for candle in replay_candles(data, program.keys, start_ms, end_ms):
        engine.on_candle(candle)
        candles += 1
        equity = engine.account.equity
        if equity >= peak:
            peak = equity
        else:
            fall = CONTEXT.subtract(peak, equity)
            max_drawdown = max(max_drawdown, fall)
            if peak > 0:
                max_drawdown_pct = max(max_drawdown_pct, CONTEXT.divide(fall, peak))
        day_close[(candle.end_ms - 1) // DAY_MS] = equity
        if progress is not None and candles % PROGRESS_EVERY == 0:
            progress(candles, len(recorder.fills), candle.end_ms)
    if progress is not None:
        progress(candles, len(recorder.fills), 0)
    account = engine.account
    summary = BacktestSummary(
        trades=len(recorder.fills),
        start_balance=account.start_balance,
        realized=account.realized_pnl,
        unrealized=account.unrealized_pnl,
        total_pnl=account.total_pnl,
        equity=account.equity,
        fees=account.fees,
        max_drawdown=max_drawdown,
        max_drawdown_pct=max_drawdown_pct,
        win_rate=win_rate(recorder.fills),
        sharpe=sharpe(config.balance, [day_close[day] for day in sorted(day_close)]),
    )
    return BacktestResult(program.name, program.version, candles, tuple(recorder.fills), summary)


def is_closing(fill: Fill) -> bool:
    """True if the fill reduced (or closed, or flipped) the position it traded against."""
    signed = fill.qty if fill.side is Side.BUY else -fill.qty
    before = fill.position - signed
    return before != 0 and (before > 0) != (signed > 0)


def win_rate(fills: Sequence[Fill]) -> float | None:
    """Closing fills with realized PnL above zero, over closing fills (None if none)."""
    closing = [fill for fill in fills if is_closing(fill)]
    if not closing:
        return None
    wins = sum(1 for fill in closing if fill.realized > 0)
    return round(wins / len(closing), 6)


def sharpe(start: Decimal, daily_equity: Sequence[Decimal]) -> float | None:
    """Annualised Sharpe of daily returns (see the module docstring); None if undefined."""
    returns: list[float] = []
    previous = start
    for equity in daily_equity:
        if previous == 0:
            return None
        returns.append(float(equity / previous) - 1.0)
        previous = equity
    if len(returns) < 2:
        return None
    deviation = statistics.stdev(returns)
    if deviation == 0:
        return None
    return round(statistics.fmean(returns) / deviation * math.sqrt(TRADING_DAYS), 6)
