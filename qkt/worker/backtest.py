"""`run_backtest`: history straight into the engine, one close instant at a time, and the figures
of the run (defined in docs/backtest.md and computed in `qkt.worker.figures`).

No hub, no ZeroMQ, no status server, no sleeping: `replay_candles` yields closed candles in close
order; every candle closing at one instant is applied before any rule of that instant runs
(`StrategyEngine.on_instant`, a time barrier), so neither the order of the SYMBOLS declarations
nor the order files are read in changes a fill. Equity is sampled after every instant.

The records it returns are in `qkt.worker.backtestresult`; the gaps, marks and buy-and-hold
curve are watched by `qkt.worker.backtestwatch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Final

from qkt.dsl import Program
from qkt.engine import (
    EngineConfig,
    EngineEvent,
    Fill,
    Instrument,
    Order,
    OrderRejectedEvent,
    RiskEvent,
    SignalEvent,
    StrategyEngine,
)
from qkt.errors import UserError
from qkt.log import iso_utc
from qkt.market import csvdata
from qkt.market.models import Candle, CandleKey
from qkt.market.replay import replay_candles
from qkt.money import CONTEXT, ZERO
from qkt.worker.backtestresult import BacktestResult, BacktestSummary
from qkt.worker.backtestwatch import _Watch
from qkt.worker.figures import DAY_MS, EquityCurve, compute, is_closing

__all__ = ["DAY_MS", "BacktestResult", "BacktestSummary", "is_closing", "run_backtest"]

PROGRESS_EVERY: Final = 1_000  # candles between two progress callbacks
GAP_CANDLES: Final = 1  # gaps of more missing candles than this are reported

Progress = Callable[[int, int, int], None]  # (candles so far, fills so far, last close ms)


class _Recorder:
    """The engine's Journal for a backtest: keeps fills (and which instruments are held, from
    each fill's resulting position), ignores orders and signals."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.held: set[Instrument] = set()

    def record_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        if fill.position:
            self.held.add(fill.instrument)
        else:
            self.held.discard(fill.instrument)

    def record_order(self, order: Order) -> None:
        pass

    def record_signal(self, signal: SignalEvent) -> None:
        pass


def run_backtest(
    program: Program,
    data: csvdata.DataPaths,
    config: EngineConfig,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    progress: Progress | None = None,
    gap_candles: int = GAP_CANDLES,
) -> BacktestResult:
    """Replay `data` for the program's keys in `[start_ms, end_ms)` through a fresh engine.

    Raises UserError for missing, ambiguous or malformed data, and for a window that selects no
    candle (stating the data's span).
    """
    keys = list(program.keys)
    _refuse_one_file_for_many_symbols(data, keys)
    recorder = _Recorder()
    engine = StrategyEngine(program, config, recorder)
    watch = _Watch(keys, gap_candles)
    curve = watch.curve = EquityCurve(config.balance)
    fills = recorder.fills
    held = recorder.held
    equity = balance = config.balance
    book: list[tuple[str, Decimal, Decimal]] = []  # (symbol, qty, average price) held
    holding = False
    fill_count = 0
    candles = 0
    next_progress = PROGRESS_EVERY
    risk_events: list[RiskEvent] = []
    rejections: list[OrderRejectedEvent] = []
    on_candle, observe_one = engine.on_candle, watch.observe_one
    times, equities, exposed, hold = curve.times, curve.equity, curve.exposed, curve.hold
    for end, candle, instant in _instants(replay_candles(data, keys, start_ms, end_ms), keys):
        if candle is not None:  # one candle: the barrier has nothing to order
            events = on_candle(candle)
            observe_one(candle)
            candles += 1
        else:
            assert instant is not None
            events = engine.on_instant(instant)
            watch.observe(instant)
            candles += len(instant)
        if events:
            _keep_risk(events, risk_events, rejections)
        # Equity moves only with a fill or, while something is held, with the marks: after a
        # fill the book is read from the engine; in between, positions are marked here at each
        # symbol's latest close exactly as Portfolio does (same order, same context).
        if len(fills) != fill_count:  # (what is held changes only with a fill too)
            fill_count = len(fills)
            account = engine.account
            equity, balance = account.equity, account.balance
            book = [(p.instrument.symbol, p.qty, p.avg_price) for p in engine.positions]
            holding = bool(held)
        elif book:
            unrealized = ZERO
            for symbol, qty, avg in book:
                change = CONTEXT.multiply(qty, CONTEXT.subtract(watch.close[symbol], avg))
                unrealized = CONTEXT.add(unrealized, change)
            equity = CONTEXT.add(balance, unrealized)
        times.append(end)
        equities.append(equity)
        exposed.append(holding)
        hold.append(watch.hold)
        if progress is not None and candles >= next_progress:
            next_progress += PROGRESS_EVERY
            progress(candles, len(fills), end)
    if progress is not None:
        progress(candles, len(fills), 0)
    if candles == 0:
        raise UserError(_no_candles(data, keys, start_ms, end_ms))
    account = engine.account
    summary = BacktestSummary(
        trades=len(fills),
        start_balance=account.start_balance,
        realized=account.realized_pnl,
        unrealized=account.unrealized_pnl,
        total_pnl=account.total_pnl,
        equity=account.equity,
        fees=account.fees,
        first_ms=curve.start_ms,
        last_ms=curve.times[-1],
        figures=compute(curve, fills),
        gaps=tuple(watch.gaps),
        risk_events=tuple(risk_events),
        rejections=tuple(rejections),
    )
    return BacktestResult(program.name, program.version, candles, tuple(fills), summary, curve)


def _keep_risk(
    events: list[EngineEvent], halts: list[RiskEvent], rejections: list[OrderRejectedEvent]
) -> None:
    for event in events:
        if isinstance(event, RiskEvent):
            halts.append(event)
        elif isinstance(event, OrderRejectedEvent):
            rejections.append(event)


def _instants(
    candles: Iterator[Candle], keys: Sequence[CandleKey]
) -> Iterator[tuple[int, Candle | None, list[Candle] | None]]:
    """The candles grouped by close instant (they come in close order): (close ms, the
    instant's one candle, None) if there is one stream, else (close ms, None, its candles)."""
    if len(keys) == 1:  # each candle is an instant of its own
        step = keys[0].timeframe.ms
        for candle in candles:
            yield candle.open_ms + step, candle, None
        return
    pending: list[Candle] = []
    at = -1
    for candle in candles:
        end = candle.end_ms
        if end != at and pending:
            yield at, None, pending
            pending = []
        at = end
        pending.append(candle)
    if pending:
        yield at, None, pending


def _refuse_one_file_for_many_symbols(data: csvdata.DataPaths, keys: Sequence[CandleKey]) -> None:
    symbols = sorted({key.symbol for key in keys})
    if len(symbols) > 1 and isinstance(data, Path) and data.is_file():
        example = " ".join(f"--data {symbol}={symbol.lower()}.csv" for symbol in symbols)
        raise UserError(
            f"{data} is one file, but the strategy trades {', '.join(symbols)}: give each symbol"
            f" its file ({example}) or a folder of <SYMBOL>.csv files"
        )


def _no_candles(
    data: csvdata.DataPaths, keys: Sequence[CandleKey], start_ms: int | None, end_ms: int | None
) -> str:
    spans = []
    for symbol in sorted({key.symbol for key in keys}):
        first, last = csvdata.data_span(csvdata.locate(data, symbol))
        spans.append(f"{symbol} {iso_utc(first, millis=False)} .. {iso_utc(last, millis=False)}")
    if start_ms is None and end_ms is None:
        return f"the data has no whole candle for the strategy's streams ({'; '.join(spans)})"
    window = (
        f"{'start' if start_ms is None else iso_utc(start_ms, millis=False)} .. "
        f"{'end' if end_ms is None else iso_utc(end_ms, millis=False)}"
    )
    return f"--from/--to ({window}) select no candle: the data spans {'; '.join(spans)}"
