"""`RunnerView`: the worker as seen from outside. It serves the status port, and answers what the
status routes and the heartbeat read or ask (`/status`, trades, halt, resume, kill, stop).

`WorkerRunner` (`qkt.worker.runner`) inherits it: the run itself (lock, journal, hub, candles)
is there, and this module only reads the state the run keeps, declared below, and asks its risk
control and lifeline to act. `RunState` is the `state` it reports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Any

from qkt.dsl import Program
from qkt.engine import HaltInfo, StrategyEngine
from qkt.errors import UserError
from qkt.hub import HubSubscriber
from qkt.log import iso_utc
from qkt.money import to_str
from qkt.records import decode
from qkt.webserver import bind_tcp, bound_port, serving
from qkt.worker.events import EventRing
from qkt.worker.fastpath import fast_paths
from qkt.worker.journal import SqliteJournal
from qkt.worker.lifeline import Lifeline, StopReason
from qkt.worker.prebuilt import status_app_for
from qkt.worker.record import (
    EventsRecord,
    HaltOutcome,
    OrderRecord,
    PositionRecord,
    SubscriberRecord,
    TradeRecord,
    WorkerStatus,
)
from qkt.worker.riskctl import WorkerRisk
from qkt.worker.spec import WorkerSpec

log = logging.getLogger("qkt.worker")


class RunState(Enum):
    """Where the worker is in its life (`/status` `state`)."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


class RunnerView:
    """The status port and the `WorkerView` of a `WorkerRunner`, which sets every attribute
    declared here."""

    spec: WorkerSpec
    program: Program
    lifeline: Lifeline
    ring: EventRing
    state: RunState
    port: int | None
    candles: dict[str, int]
    warmup_candles: int
    changes: int
    _engine: StrategyEngine | None
    _journal: SqliteJournal | None
    _subscriber: HubSubscriber | None
    _risk: WorkerRisk | None
    _last_halt: HaltInfo | None
    _halt_changes: int
    _started_wall: float
    _started: float

    async def _serve(self, stack: contextlib.AsyncExitStack) -> None:
        spec = self.spec
        try:
            sock = bind_tcp(spec.bind, spec.port)
        except OSError as error:
            raise UserError(
                f"cannot serve the status port on {spec.bind}:{spec.port}: "
                f"{error.strerror or error}"
            ) from None
        stack.callback(sock.close)
        self.port = bound_port(sock)
        token_file = None if spec.token_file is None else Path(spec.token_file)
        app = status_app_for(self, self.ring, token_file)
        await stack.enter_async_context(serving(fast_paths(app), sock))
        log.info("status port %s:%d", spec.bind, self.port)

    # -- WorkerView (the status routes) -------------------------------------------------------

    def status(self) -> WorkerStatus:
        """The `/status` record (money as exact decimal strings)."""
        engine = self._engine
        assert engine is not None
        spec, program = self.spec, self.program
        stats = None if self._subscriber is None else self._subscriber.stats()
        account = engine.account
        last = engine.last_trade
        return WorkerStatus(
            strategy=program.name,
            version=program.version,
            name=spec.name,
            pid=os.getpid(),
            state=self.state.value,
            started_at=iso_utc(int(self._started_wall * 1000)),
            uptime_ms=int((time.monotonic() - self._started) * 1000),
            file=spec.file,
            source_hash=spec.source_hash,
            start_balance=to_str(account.start_balance),
            balance=to_str(account.balance),
            equity=to_str(account.equity),
            realized=to_str(account.realized_pnl),
            unrealized=to_str(account.unrealized_pnl),
            total_pnl=to_str(account.total_pnl),
            fees=to_str(account.fees),
            positions=[decode(PositionRecord, p.to_json()) for p in engine.positions],
            open_orders=[decode(OrderRecord, o.to_json()) for o in engine.open_orders],
            trades=engine.trade_count,
            last_trade=None if last is None else decode(TradeRecord, last.to_json()),
            keys=[str(key) for key in program.keys],
            last_candle_ts={str(k): ms for k, ms in engine.last_candle_ms.items()},
            warm=engine.warm,
            candles=dict(self.candles),
            warmup_candles=self.warmup_candles,
            fee_bps=spec.fee_bps,
            slippage_bps=spec.slippage_bps,
            fill_at=spec.fill_at,
            sim=spec.sim,
            subscriber=None if stats is None else SubscriberRecord(**asdict(stats)),
            events=EventsRecord(self.ring.last_id, self.ring.subscribers, self.ring.dropped),
            risk=self._risk_control().record(),
            indicators={
                text: None if value is None else to_str(value)
                for text, value in engine.indicators.items()
            },
        )

    def trades(self, *, after: int | None, limit: int) -> list[dict[str, Any]]:
        """Fills from the journal."""
        assert self._journal is not None
        return self._journal.trades(after=after, limit=limit)

    def engine(self) -> StrategyEngine | None:
        """The engine once the journal is open (None before): for the heartbeat's figures."""
        return self._engine

    def changes_so_far(self) -> int:
        """`changes`, for the heartbeat's figures."""
        return self.changes

    def trades_so_far(self) -> int | None:
        """The engine's trade count (None before the journal is open): for the heartbeat."""
        return None if self._engine is None else self._engine.trade_count

    def halt_changes(self) -> int:
        """How many times the strategy's halt changed (halted, lifted, replaced) as seen by the
        heartbeat, which carries it: the daemon reads a worker's halt only when this moves."""
        halt = None if self._engine is None else self._engine.halt_info
        if halt != self._last_halt:
            self._last_halt, self._halt_changes = halt, self._halt_changes + 1
        return self._halt_changes

    def trade_total(self) -> int:
        """Fills in the journal."""
        assert self._journal is not None
        return self._journal.trade_count()

    def halt(self, reason: str, by: str, kind: str) -> HaltOutcome:
        """`POST /halt`: no new entries."""
        return self._risk_control().halt(reason, by, kind)

    def resume(self, by: str) -> HaltOutcome:
        """`POST /resume`."""
        return self._risk_control().resume(by)

    def kill(self, flatten: bool, reason: str, by: str) -> HaltOutcome:
        """`POST /kill`: halt, cancel every order, optionally flatten."""
        return self._risk_control().kill(flatten, reason, by)

    def _risk_control(self) -> WorkerRisk:
        assert self._risk is not None, "the worker has not started"
        return self._risk

    def request_stop(self, flatten: bool) -> None:
        """`POST /stop`."""
        self.lifeline.request_stop(StopReason.REQUEST, flatten=flatten, detail="POST /stop")
