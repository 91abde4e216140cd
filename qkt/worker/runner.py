"""`WorkerRunner`: one strategy's life, from lock to exit, inside one asyncio loop.

Start: take the strategy's lock, open the journal and restore the engine from it, run the
program once on made-up candles in a scratch journal (`prewarm`), serve the status port (bound
first), subscribe to the hub (history through `warm_up`, never traded, also after a restart),
then write the port file: the worker is ready. Run: every live candle is one
journal transaction (fills, orders, signals, equity, engine state) committed before its events
are reported to the log, the event ring, SSE and the host. Stop (signal, `POST /stop`, dead
parent): stop trading, flatten if asked, close the subscriber, stop the server, remove the port
file, close the journal, release the lock.

The same runner serves both hosts: `run_worker` (a process of its own under a daemon) and
`qkt run` (in the foreground, beside an in-process hub).

The status port and what its routes and the heartbeat read or ask are `RunnerView`'s
(`qkt.worker.runview`), which `WorkerRunner` inherits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from qkt.atomic import write_atomic
from qkt.dsl import Program
from qkt.engine import (
    EngineConfig,
    EngineEvent,
    Fill,
    FillAt,
    HaltInfo,
    LogEvent,
    LogLevel,
    OrderEvent,
    OrderRejectedEvent,
    RiskEvent,
    SignalEvent,
    StrategyEngine,
    TradeEvent,
    limits_from_flags,
    margin_from_flags,
)
from qkt.engine.state import candle_to_json
from qkt.hub import Gap, HubEndpoints, HubSubscriber, SequencedCandle
from qkt.money import to_str
from qkt.worker.behind import MarketBehind
from qkt.worker.events import EventKind, EventRing
from qkt.worker.journal import SqliteJournal
from qkt.worker.lifeline import Lifeline
from qkt.worker.lock import InstanceLock
from qkt.worker.prewarm import prewarm
from qkt.worker.report import LaterLines
from qkt.worker.riskctl import WorkerRisk
from qkt.worker.runview import RunnerView, RunState
from qkt.worker.spec import WorkerSpec

log = logging.getLogger("qkt.worker")
strategy_log = logging.getLogger("qkt.strategy")


def _candle_body(item: SequencedCandle) -> dict[str, Any]:
    """A candle event's JSON body: the candle and its seq in the hub."""
    return {**candle_to_json(item.candle), "seq": item.seq}


@dataclass(frozen=True, slots=True)
class RunSummary:
    """How a run ended: the books at the stop and why it stopped."""

    trades: int
    realized: Decimal
    equity: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class RunnerHooks:
    """What a host wants to hear about: the bound port (None: not observed) and each fill."""

    on_ready: Callable[[int | None], None] | None = None
    on_fill: Callable[[Fill], None] | None = None


class WorkerRunner(RunnerView):
    """Runs `program` as `spec` says until the lifeline asks it to stop."""

    def __init__(
        self,
        spec: WorkerSpec,
        program: Program,
        lifeline: Lifeline,
        hooks: RunnerHooks | None = None,
    ) -> None:
        self.spec = spec
        self.program = program
        self.lifeline = lifeline
        self.hooks = hooks or RunnerHooks()
        self.config = EngineConfig(
            balance=spec.money("balance"),
            fee_bps=spec.money("fee_bps"),
            slippage_bps=spec.money("slippage_bps"),
            fill_at=FillAt(spec.fill_at),
            limits=limits_from_flags(spec.limits),
            margin=margin_from_flags(spec.leverage, "on" if spec.margin else "off"),
        )
        self.ring = EventRing(spec.events_capacity)
        self._lines = LaterLines(strategy_log)
        self.state = RunState.STARTING
        self.port: int | None = None
        self.candles: dict[str, int] = {str(key): 0 for key in program.keys}
        self.warmup_candles = 0
        # Moves whenever the account or the halt may have (every report of a candle's or a
        # verb's events): the heartbeat's figures are made again only when it moved.
        self.changes = 0
        self._engine: StrategyEngine | None = None
        self._journal: SqliteJournal | None = None
        self._subscriber: HubSubscriber | None = None
        self._risk: WorkerRisk | None = None
        self._behind = MarketBehind()
        self._last_halt: HaltInfo | None = None
        self._halt_changes = 0
        self._market_ms = 0  # close time of the latest candle seen: the engine's clock
        self._started_wall = time.time()
        self._started = time.monotonic()

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        """Run until stopped; raises what made it fail (AlreadyRunningError, HubError, ...)."""
        spec = self.spec
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self._lines.flush)  # however the run ends, no line is left waiting
            lock = InstanceLock(spec.state.strategy_dir(spec.name) / "worker.lock", spec.name)
            lock.acquire()
            stack.callback(lock.release)
            # A port file left by a killed predecessor must not pass for this worker's readiness.
            spec.port_file.unlink(missing_ok=True)
            stack.callback(spec.port_file.unlink, missing_ok=True)
            journal = self._journal = SqliteJournal(spec.journal_file)
            stack.callback(journal.close)
            engine = self._engine = StrategyEngine(
                self.program, self.config, journal, journal.load_state(), clock=self._now_ms
            )
            self._market_ms = max((ms for ms in engine.last_candle_ms.values()), default=0)
            risk = self._risk = WorkerRisk(
                spec.name, engine, journal, self.config, self._report, self._now_ms
            )
            self._note_start(engine)
            risk.apply_saved(spec.halt)
            prewarm(self.program, self.config, spec.journal_file.parent)  # its first candle now
            if spec.observe:
                await self._serve(stack)
            await self._trade_until_stopped(stack)
            summary = self._stop(engine, journal)
        return summary

    async def _trade_until_stopped(self, stack: contextlib.AsyncExitStack) -> None:
        trading = asyncio.create_task(self._trade(stack), name="worker-trade")
        stopping = asyncio.create_task(self.lifeline.wait(), name="worker-stop")
        try:
            await asyncio.wait({trading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.state = RunState.STOPPING
            stopping.cancel()
            trading.cancel()
        if not trading.cancelled() and trading.done():
            trading.result()  # a failure: raise it (the exit stack still cleans up)
            raise RuntimeError("the candle stream ended")  # HubSubscriber never ends by itself
        with contextlib.suppress(asyncio.CancelledError):
            await trading

    async def _trade(self, stack: contextlib.AsyncExitStack) -> None:
        spec = self.spec
        subscriber = HubSubscriber(HubEndpoints(spec.hub_pub, spec.hub_snapshot), on_gap=self._gap)
        self._subscriber = subscriber
        stack.push_async_callback(subscriber.aclose)
        keys = self.program.keys
        await subscriber.subscribe(keys, warmup=spec.warmup)
        self.state = RunState.RUNNING
        # Trades and figures in the heartbeat file before the daemon sees this worker ready,
        # not up to a beat later: `qkt list` and a scrape have them from the first look.
        self.lifeline.beat()
        if self.port is not None:
            write_atomic(spec.port_file, f"{self.port}\n")
        self._say(f"running on {', '.join(str(k) for k in keys)}")
        if self.hooks.on_ready is not None:
            self.hooks.on_ready(self.port)
        await subscriber.consume(self._take_candle)

    def _take_candle(self, item: SequencedCandle) -> None:
        # The subscriber calls this from its reader as each candle comes: once a stop is under
        # way (the trading task cancelled, not yet ended), no candle is traded any more.
        if self.state is RunState.RUNNING:
            self._on_candle(item)

    def _stop(self, engine: StrategyEngine, journal: SqliteJournal) -> RunSummary:
        request = self.lifeline.request
        reason = "stopped" if request is None else (request.detail or request.reason.value)
        if request is not None and request.flatten:
            with journal.transaction():
                events = engine.flatten(int(time.time() * 1000))
                journal.save_state(engine.export_state())
            self._report(events)
        account = engine.account
        summary = RunSummary(engine.trade_count, account.realized_pnl, account.equity, reason)
        self._say(
            f"stopping ({reason}): {summary.trades} trades, realized {to_str(summary.realized)}, "
            f"equity {to_str(summary.equity)}"
        )
        self.ring.close()  # ends the SSE streams, so the server stops at once
        return summary

    # -- candles -----------------------------------------------------------------------------

    def _on_candle(self, item: SequencedCandle) -> None:
        engine, journal = self._engine, self._journal
        assert engine is not None and journal is not None
        candle = item.candle
        last = engine.last_candle_ms.get(candle.key)
        if last is not None and candle.open_ms <= last:
            # A replayed snapshot: already taken before a restart. A live one: the market's
            # clock is behind the journal, which must not go unsaid.
            warning = None if item.snapshot else self._behind.skipped(candle, last)
            if warning is not None:
                self._say(warning, LogLevel.WARNING)
            return
        if not item.snapshot and (resumed := self._behind.taken(candle)) is not None:
            self._say(resumed)
        self._market_ms = max(self._market_ms, candle.end_ms)
        if item.snapshot:
            self.warmup_candles += 1
            self._report(engine.warm_up(candle), later=True)
            return
        events = journal.commit_candle(engine, candle)  # committed before anything is reported
        self.candles[str(candle.key)] = self.candles.get(str(candle.key), 0) + 1
        self.ring.publish(EventKind.CANDLE, functools.partial(_candle_body, item), ts=candle.end_ms)
        self._report(events, later=True)

    def _report(self, events: list[EngineEvent], *, later: bool = False) -> None:
        """Events once journaled: log lines (`later`, a candle's: a second later, stamped now;
        an operator's action's at once), the ring (SSE), the risk watch's counts, fills to the
        hooks."""
        if later:
            self._lines.add(events, time.time())
        else:
            self._lines.now(events)
        self.changes += 1
        if self._risk is not None:
            self._risk.count(events)
        publish = self.ring.publish
        for event in events:
            if isinstance(event, TradeEvent):
                publish(EventKind.TRADE, event.to_json, ts=event.ts)
                if self.hooks.on_fill is not None:
                    self.hooks.on_fill(event.fill)
            elif isinstance(event, SignalEvent):
                publish(EventKind.SIGNAL, event.to_json, ts=event.ts)
            elif isinstance(event, OrderEvent):
                publish(EventKind.ORDER, event.to_json, ts=event.ts)
            elif isinstance(event, LogEvent):
                publish(EventKind.LOG, event.to_json, ts=event.ts)
            elif isinstance(event, RiskEvent):
                publish(EventKind.RISK, event.to_json, ts=event.ts)
            elif isinstance(event, OrderRejectedEvent):
                publish(EventKind.REJECTED, event.to_json, ts=event.ts)

    def _now_ms(self) -> int:
        """The engine's clock: market time (the latest candle's close; the wall clock before
        any), so a simulated market's days and minutes are the ones the limits count."""
        return self._market_ms or int(time.time() * 1000)

    def _gap(self, gap: Gap) -> None:
        self._say(
            f"{gap.key}: {gap.count} candle(s) lost in a hub gap (seq {gap.first_seq}.."
            f"{gap.last_seq}); indicators skip them",
            level=LogLevel.WARNING,
        )

    def _say(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        """A worker line: in the log file (after the strategy's lines made before it) and in
        the event ring."""
        self._lines.flush()
        log.log(logging.WARNING if level is LogLevel.WARNING else logging.INFO, "%s", message)
        self.ring.publish(EventKind.LOG, {"level": level.value, "message": message, "rule": None})

    def _note_start(self, engine: StrategyEngine) -> None:
        program = self.program
        if engine.trade_count or engine.positions or engine.open_orders:
            account = engine.account
            self._say(
                f"restored from {self.spec.journal_file}: {engine.trade_count} trades, "
                f"{len(engine.positions)} position(s), {len(engine.open_orders)} open order(s), "
                f"balance {to_str(account.balance)}"
            )
        self._say(f"strategy {program.name} v{program.version} from {program.path}")
