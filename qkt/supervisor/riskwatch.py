"""`RiskWatch`: the daemon reads its workers' risk figures every `[risk] check_interval_s`.

Two jobs, from what each running worker's heartbeat file holds and, where that is not enough,
its `/status`:
- keep each deployment's halt record in step with its worker (a strategy's own limit halted
  it, or a daily-loss halt lifted at 00:00 UTC), reporting each change as an event, so that
  `qkt list` shows it and a restarted worker is handed it;
- enforce the daemon-wide limits of `[risk]` (docs/risk.md): the sum of every strategy's daily
  loss, and the drawdown of the summed equity from its peak, evaluated by
  `qkt.engine.evaluate_portfolio_limits`; a breach halts every strategy (`by: daemon`), or kills
  them with flatten when `[risk] flatten = true`. The peak is kept in memory: it starts again
  from the summed equity when the daemon starts and after every resume.

Per-strategy limits are enforced by the workers themselves: this only reports them. A worker
is read only when its heartbeat says its halt changed (and once per process): a thousand idle
workers cost no request at all. The daemon-wide limits take each strategy's equity and the
day's starting equity from the figures its worker stores in its heartbeat file (a few seconds
behind a candle at most, `qkt.worker.beatfigures`), and read the `/status` only of a worker
that stored none (an older qkt's), so checking them every second costs no request either.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from qkt.engine import Breach, HaltKind, StrategyEquity, evaluate_portfolio_limits
from qkt.money import CONTEXT, ZERO, to_str
from qkt.notify import Event, EventKind
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.records import RunningStatus
from qkt.supervisor.riskconfig import RiskSettings
from qkt.worker.record import HaltRecord

if TYPE_CHECKING:
    from qkt.supervisor.halts import Halts

log = logging.getLogger(__name__)
IDLE_INTERVAL_S: Final = 5.0


class RiskWatch:
    """See the module docstring; `run` until cancelled, or `check` once (tests)."""

    def __init__(self, halts: Halts, settings: RiskSettings) -> None:
        self._halts = halts
        self._settings = settings
        self._peak: Decimal | None = None  # the summed equity's peak
        self._resumes = halts.resumes
        self._enforced: HaltKind | None = None  # the daemon-wide breach already acted on
        # Per strategy: (pid, halt changes) of the heartbeat at the last read that was taken in.
        self._synced: dict[str, tuple[int, int]] = {}

    async def run(self) -> None:
        """Check every interval until cancelled; a failed check is logged, never fatal."""
        limits = self._settings.portfolio
        interval = self._settings.check_interval_s
        if limits.max_daily_loss is None and limits.max_drawdown_pct is None:
            # Only the records to keep in step: no need to read hundreds of workers every second.
            interval = max(interval, IDLE_INTERVAL_S)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the daemon-wide risk check failed")

    async def check(self) -> None:
        """One round: read every running worker, sync the halt records, check the limits."""
        halts = self._halts
        registry = halts.registry
        running = [
            h for h in registry.handles() if h.state is WorkerState.RUNNING and h.port is not None
        ]
        limits = self._settings.portfolio
        stamps = {h.name: _stamp(h) for h in running}
        for gone in self._synced.keys() - stamps.keys():
            del self._synced[gone]
        watching = limits.max_daily_loss is not None or limits.max_drawdown_pct is not None
        figures = registry.read_figures() if watching else {}
        equities: list[StrategyEquity] = []
        to_read = []
        for h in running:
            moved = stamps[h.name] is None or stamps[h.name] != self._synced.get(h.name)
            stored = figures.get(h.name)
            if moved or h.name in halts.pending:
                to_read.append(h)  # its halt moved, or a verb's halt waits: its /status says
            elif not watching:
                continue
            elif stored is None or stored.day_start_equity is None:
                to_read.append(h)  # no figures in its heartbeat: its equity from /status
            else:
                equity = StrategyEquity(
                    h.name, Decimal(stored.equity), Decimal(stored.day_start_equity)
                )
                equities.append(equity)
        marks = [halts.mark(h.name) for h in to_read]
        found = await asyncio.gather(
            *(registry.status_of(h.name) for h in to_read), return_exceptions=True
        )
        synced = False
        for handle, mark, status in zip(to_read, marks, found, strict=True):
            if not isinstance(status, RunningStatus) or status.risk is None:
                continue
            # A verb on this strategy ran while its worker was read: the verb's word wins.
            stale = halts.stale(handle.name, mark)
            risk = status.risk
            pending = None if stale else halts.pending.pop(handle.name, None)
            if pending is not None and risk.halt is None:
                await halts.reapply(handle, pending)
                continue
            equities.append(
                StrategyEquity(handle.name, Decimal(risk.equity), Decimal(risk.day_start_equity))
            )
            if stale:
                continue
            if handle.name in registry and handle.deployment.halt != risk.halt:
                self._report(handle, handle.deployment.halt, risk.halt)
                halts.remember(handle, risk.halt)
                synced = True
            if (stamp := stamps[handle.name]) is not None:
                self._synced[handle.name] = stamp
        if synced:
            registry.save()
        await self._portfolio(equities)

    def _report(self, handle: WorkerHandle, old: HaltRecord | None, new: HaltRecord | None) -> None:
        emit, name = self._halts.emit, handle.name
        if new is None:
            assert old is not None
            log.warning("%s trades again (%s halt lifted)", name, old.kind)
            emit(Event.resume(name))
            return
        if old is not None and (old.kind, old.since_ms) == (new.kind, new.since_ms):
            return
        log.warning("%s halted by %s: %s", name, new.by, new.reason)
        if new.kind != HaltKind.OPERATOR.value and new.by == "risk":
            emit(Event.risk(name, new.kind, _figure(new.reason), new.reason))
        emit(Event.halt(name, new.reason))

    async def _portfolio(self, equities: list[StrategyEquity]) -> None:
        limits = self._settings.portfolio
        if not equities or (limits.max_daily_loss is None and limits.max_drawdown_pct is None):
            return
        if self._halts.resumes != self._resumes:  # measured afresh after a resume
            self._resumes, self._peak, self._enforced = self._halts.resumes, None, None
        total = ZERO
        for row in equities:
            total = CONTEXT.add(total, row.equity)
        peak = total if self._peak is None else max(self._peak, total)
        breach = evaluate_portfolio_limits(equities, limits, peak, self._halts.now_ms())
        self._peak = peak
        if breach is None:
            self._enforced = None
            return
        if self._enforced is breach.kind:
            return  # halted for it already: not again on every check
        self._enforced = breach.kind
        await self._enforce(breach)

    async def _enforce(self, breach: Breach) -> None:
        halts = self._halts
        log.error("daemon-wide limit breached: %s", breach.reason)
        halts.emit(
            Event.of(
                EventKind.RISK,
                None,
                limit=breach.kind.value,
                value=to_str(breach.value),
                reason=breach.reason,
            )
        )
        if self._settings.flatten:
            await halts.kill(None, True, "daemon", reason=breach.reason)
        else:
            await halts.halt_all(halts.targets(None), breach.reason, "daemon", breach.kind)


def _stamp(handle: WorkerHandle) -> tuple[int, int] | None:
    """(pid, halt changes) of the worker's last heartbeat; None without one (then it is read
    every round, as before heartbeats carried halts)."""
    if handle.heartbeat is None:
        return None
    beat = handle.heartbeat.read()
    return beat.pid, beat.halts


def _figure(reason: str) -> str:
    """The figure of a breach's reason (`... breached: lost 251.3 since 00:00 UTC at ...`)."""
    _, _, what = reason.partition("breached: ")
    return what.rsplit(" at ", 1)[0] or reason
