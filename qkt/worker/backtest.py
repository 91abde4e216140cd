"""`run_backtest`: history straight into the engine, one close instant at a time, and the figures
of the run (defined in docs/backtest.md and computed in `qkt.worker.figures`).

No hub, no ZeroMQ, no status server, no sleeping: `replay_candles` yields closed candles in close
order; every candle closing at one instant is applied before any rule of that instant runs
(`StrategyEngine.on_instant`, a time barrier), so neither the order of the SYMBOLS declarations
nor the order files are read in changes a fill. Equity is sampled after every instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

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
from qkt.market.models import Candle, CandleKey, Timeframe
from qkt.market.replay import replay_candles
from qkt.money import CONTEXT, ZERO, to_str
from qkt.worker.figures import DAY_MS, EquityCurve, Figures, Gap, compute, is_closing

__all__ = ["DAY_MS", "BacktestResult", "BacktestSummary", "is_closing", "run_backtest"]

PCT_STEP: Final = Decimal("0.00000001")
PROGRESS_EVERY: Final = 1_000  # candles between two progress callbacks
GAP_CANDLES: Final = 1  # gaps of more missing candles than this are reported
MAX_REJECTIONS_LISTED: Final = 100  # the JSON lists the first ones; `rejected` counts them all

Progress = Callable[[int, int, int], None]  # (candles so far, fills so far, last close ms)


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    """The figures of a run; docs/backtest.md defines each."""

    trades: int
    start_balance: Decimal
    realized: Decimal
    unrealized: Decimal
    total_pnl: Decimal
    equity: Decimal
    fees: Decimal
    first_ms: int | None  # open of the first candle
    last_ms: int | None  # close of the last candle
    figures: Figures
    gaps: tuple[Gap, ...]
    # docs/risk.md: halts, resumes and midnight lifts, and the orders refused (halted, a
    # limit, or no buying power), in the order they happened.
    risk_events: tuple[RiskEvent, ...] = ()
    rejections: tuple[OrderRejectedEvent, ...] = ()

    @property
    def max_drawdown(self) -> Decimal:
        """The largest fall of equity below its running peak, in money."""
        return self.figures.max_drawdown

    @property
    def max_drawdown_pct(self) -> Decimal:
        """That fall as a fraction (0..1) of the peak it fell from (the old name; not x100)."""
        return self.figures.max_drawdown_fraction

    @property
    def win_rate(self) -> float | None:
        """Closing fills with realized PnL above zero, over closing fills."""
        return self.figures.win_rate

    @property
    def sharpe(self) -> float | None:
        """Annualised Sharpe ratio of daily returns (None on a wiped-out account)."""
        return self.figures.sharpe

    def to_json(self) -> dict[str, Any]:
        """spec.md's summary object (money as exact decimal strings), plus the other figures."""
        f = self.figures
        fraction = to_str(f.max_drawdown_fraction.quantize(PCT_STEP))
        return {
            "trades": self.trades,
            "realized": to_str(self.realized),
            "unrealized": to_str(self.unrealized),
            "total_pnl": to_str(self.total_pnl),
            "equity": to_str(self.equity),
            "max_drawdown": to_str(f.max_drawdown),
            "win_rate": f.win_rate,
            "sharpe": f.sharpe,
            "start_balance": to_str(self.start_balance),
            "fees": to_str(self.fees),
            "max_drawdown_fraction": fraction,
            "max_drawdown_pct": fraction,  # the old name of the same fraction, kept for readers
            "longest_drawdown_ms": f.longest_drawdown_ms,
            "wiped_out": f.wiped_out_ms is not None,
            "wiped_out_ts": f.wiped_out_ms,
            "total_return": f.total_return,
            "cagr": f.cagr,
            "sortino": f.sortino,
            "calmar": f.calmar,
            "profit_factor": f.profit_factor,
            "expectancy": _opt(f.expectancy),
            "avg_win": _opt(f.avg_win),
            "avg_loss": _opt(f.avg_loss),
            "exposure": f.exposure,
            "trades_per_day": f.trades_per_day,
            "buy_and_hold_return": f.buy_and_hold_return,
            "first_ts": self.first_ms,
            "last_ts": self.last_ms,
            "gaps": [
                {"symbol": g.symbol, "after_ts": g.after_ms, "missing": g.missing}
                for g in self.gaps
            ],
            "undefined": dict(sorted(f.undefined.items())),
            "halts": [event.to_json() for event in self.risk_events],
            "rejected": len(self.rejections),
            "rejections": [
                {"ts": r.ts, "reason": r.reason, "symbol": r.order.instrument.symbol}
                for r in self.rejections[:MAX_REJECTIONS_LISTED]
            ],
        }


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What `qkt backtest` reports (the curve feeds `--report`)."""

    strategy: str
    version: int
    candles: int
    fills: tuple[Fill, ...]
    summary: BacktestSummary
    curve: EquityCurve

    def to_json(self) -> dict[str, Any]:
        """spec.md's `qkt backtest --json` object."""
        return {
            "strategy": self.strategy,
            "version": self.version,
            "candles": self.candles,
            "trades": [trade_json(fill) for fill in self.fills],
            "summary": self.summary.to_json(),
        }


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else to_str(value)


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


class _Stream:
    """What `_Watch` keeps about one symbol's finest stream."""

    __slots__ = ("first_close", "last_open", "step", "symbol")

    def __init__(self, key: CandleKey) -> None:
        self.symbol = key.symbol
        self.step = key.timeframe.ms
        self.last_open = -1
        self.first_close = 0.0


class _Watch:
    """Per symbol, from its finest stream: data gaps, marks and the buy-and-hold curve."""

    def __init__(self, keys: Sequence[CandleKey], gap_candles: int) -> None:
        self.finest = _finest(keys)
        self.gap_candles = gap_candles
        self.gaps: list[Gap] = []
        self.curve = EquityCurve(Decimal(0))
        self._ratio: dict[str, float] = {}  # symbol -> last close / first close
        self.hold = 1.0  # buy-and-hold equity per unit: the mean of those ratios
        self.close: dict[str, Decimal] = {}  # symbol -> last close (its mark)
        # By the key object's id: a CandleKey's hash is computed field by field on every call,
        # and the replay hands out the same key object for every candle of a stream.
        self._streams: dict[int, _Stream | None] = {}
        self._seen: list[CandleKey] = []
        self._only = _Stream(keys[0]) if len(keys) == 1 else None  # the one stream, if so

    def observe_one(self, candle: Candle) -> None:
        """`observe([candle])` when the run has one stream (so it is the finest)."""
        stream = self._only
        if stream is None:
            self.observe([candle])
            return
        open_ms, close = candle.open_ms, candle.close
        previous = stream.last_open
        if previous < 0:
            stream.first_close = float(close)
            self.curve.start_ms = open_ms
        elif open_ms - previous > stream.step:
            missing = (open_ms - previous) // stream.step - 1
            if missing > self.gap_candles:
                self.gaps.append(Gap(stream.symbol, previous, missing))
        stream.last_open = open_ms
        self.close[stream.symbol] = close
        self.hold = self._ratio[stream.symbol] = float(close) / stream.first_close

    def observe(self, instant: list[Candle]) -> None:
        streams = self._streams
        ratio = 0.0
        for candle in instant:
            key = candle.key
            stream = streams.get(id(key), _UNSEEN)
            if stream is _UNSEEN:
                stream = streams[id(key)] = _Stream(key) if key in self.finest else None
                self._seen.append(key)  # an id names this key only while the key is alive
            if stream is None:
                continue
            open_ms, close = candle.open_ms, candle.close
            previous = stream.last_open
            if previous < 0:
                stream.first_close = float(close)
                if not self.curve.times:
                    self.curve.start_ms = open_ms
            elif open_ms - previous > stream.step:
                missing = (open_ms - previous) // stream.step - 1
                if missing > self.gap_candles:
                    self.gaps.append(Gap(stream.symbol, previous, missing))
            stream.last_open = open_ms
            self.close[stream.symbol] = close
            ratio = self._ratio[stream.symbol] = float(close) / stream.first_close
        ratios = self._ratio
        if len(ratios) == 1:
            if ratio:  # the one symbol's, just computed
                self.hold = ratio
        elif ratios:
            self.hold = sum(ratios.values()) / len(ratios)


_UNSEEN: Final = _Stream(CandleKey("", "", Timeframe(1, "1ms")))  # not a stream of the run


def _finest(keys: Sequence[CandleKey]) -> set[CandleKey]:
    """Each symbol's shortest stream: the one gaps and buy-and-hold are read from."""
    best: dict[tuple[str, str], CandleKey] = {}
    for key in keys:
        market = (key.broker, key.symbol)
        if market not in best or key.timeframe.ms < best[market].timeframe.ms:
            best[market] = key
    return set(best.values())


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
