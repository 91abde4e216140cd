"""`WorkerRisk`: the worker's side of halt, resume and kill, and the figures `/status` shows.

The engine holds the halt and the limits (qkt/engine/guard.py); this module drives it from the
worker's routes, on the worker's loop, between two candles. Every verb is one journal
transaction that saves the engine's state, so a halt is on disk before the answer leaves: a
worker restarted (or a daemon restarted) finds its strategy halted. Each `risk` event is also
counted (`qkt_halts_total{reason}`) and each `order_rejected`, for `/status` and `/metrics`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from qkt.engine import (
    EngineConfig,
    EngineEvent,
    HaltInfo,
    HaltKind,
    OrderRejectedEvent,
    RiskEvent,
    StrategyEngine,
)
from qkt.money import CONTEXT, to_str
from qkt.records import decode
from qkt.worker.journal import SqliteJournal
from qkt.worker.record import HaltOutcome, HaltRecord, LimitsRecord, PositionRecord, RiskRecord

log = logging.getLogger("qkt.worker")
HALTING_ACTIONS = frozenset({"halt", "kill"})

Report = Callable[[list[EngineEvent]], None]


class WorkerRisk:
    """Halt, resume and kill of one worker's engine, each saved at once; counts for /metrics."""

    def __init__(
        self,
        name: str,
        engine: StrategyEngine,
        journal: SqliteJournal,
        config: EngineConfig,
        report: Report,
        clock: Callable[[], int],
    ) -> None:
        self._name = name
        self._clock = clock
        self._engine = engine
        self._journal = journal
        self._config = config
        self._report = report
        self.halts: Counter[str] = Counter()  # by kind, since the worker started
        self.rejected = 0

    def count(self, events: list[EngineEvent]) -> None:
        """Count the halts and rejections among `events` (every event the engine reports)."""
        for event in events:
            if isinstance(event, RiskEvent) and event.action in HALTING_ACTIONS:
                self.halts[event.kind] += 1
            elif isinstance(event, OrderRejectedEvent):
                self.rejected += 1

    def apply_saved(self, saved: dict[str, Any] | None) -> None:
        """At start: apply a halt the daemon recorded (`WorkerSpec.halt`) unless the journal
        already holds one. A daily-loss halt is left to the journal: it may have lifted at
        midnight since it was recorded."""
        if saved is None or self._engine.halt_info is not None:
            return
        info = HaltInfo.from_json(saved)
        if info.kind.lifts_at_midnight:
            return
        log.info("re-applying the halt the daemon recorded: %s", info.reason)
        if info.killed:
            self._saved(lambda: self._engine.kill(False, info.reason, info.by).events)
        else:
            self._saved(lambda: self._engine.halt(info.reason, info.by, kind=info.kind))

    # -- the verbs ---------------------------------------------------------------------------

    def halt(self, reason: str, by: str, kind: str = HaltKind.OPERATOR.value) -> HaltOutcome:
        """Stop new entries; `kind` is `operator` or a daemon-wide limit's kind."""
        halt_kind = HaltKind(kind)
        self._saved(lambda: self._engine.halt(reason, by, kind=halt_kind))
        return self.outcome()

    def resume(self, by: str) -> HaltOutcome:
        """Lift the halt (NotHaltedError, a 409, if there is none: nothing changes)."""
        self._saved(lambda: self._engine.resume(by))
        return self.outcome()

    def kill(self, flatten: bool, reason: str, by: str) -> HaltOutcome:
        """Halt, cancel every order, and with `flatten` close every position at market."""
        self._saved(lambda: self._engine.kill(flatten, reason, by).events)
        return self.outcome()

    def _saved(self, act: Callable[[], list[EngineEvent]]) -> None:
        with self._journal.transaction():
            events = act()
            self._journal.save_state(self._engine.export_state())
        self._report(events)

    # -- views -------------------------------------------------------------------------------

    def outcome(self) -> HaltOutcome:
        """The halt now and the positions left."""
        halt = self._engine.halt_info
        return HaltOutcome(
            name=self._name,
            halted=halt is not None,
            halt=halt_record(halt),
            positions=[decode(PositionRecord, p.to_json()) for p in self._engine.positions],
        )

    def record(self) -> RiskRecord:
        """The `risk` part of `/status`, from the engine's typed figures (as `risk_status()`)."""
        engine, margin = self._engine, self._config.margin
        monitor, equity = engine.risk, engine.account.equity
        halt = engine.halt_info
        return RiskRecord(
            halted=halt is not None,
            halt=halt_record(halt),
            limits=decode(LimitsRecord, self._config.limits.to_json()),
            equity=to_str(equity),
            day_start_equity=to_str(monitor.day_start_equity),
            daily_pnl=to_str(CONTEXT.subtract(equity, monitor.day_start_equity)),
            peak_equity=to_str(monitor.peak_equity),
            loss_streak=monitor.loss_streak,
            orders_last_minute=monitor.orders_in_last_minute(self._clock()),
            available=to_str(engine.available),
            leverage=to_str(margin.leverage),
            margin=margin.enabled,
            halts=dict(self.halts),
            rejected=self.rejected,
        )


def halt_record(halt: HaltInfo | None) -> HaltRecord | None:
    """The wire record of an engine halt."""
    return None if halt is None else decode(HaltRecord, halt.to_json())
