"""`Halts` and `RiskWatch` on their own: which events they emit, what they record, what they
refuse, and the daemon-wide limits, with stand-ins for the registry and the workers' answers
(the real daemon and workers are in test_halt_e2e.py and test_limits_e2e.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from qkt.engine import NotHaltedError, PortfolioLimits
from qkt.errors import NotFoundError
from qkt.notify import Event, EventKind
from qkt.records import decode, to_json
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.figures import LastFigures, figures_from_beat
from qkt.supervisor.halts import Halts
from qkt.supervisor.handle import WorkerHandle, WorkerState
from qkt.supervisor.records import RunningStatus
from qkt.supervisor.riskconfig import RiskSettings
from qkt.supervisor.riskwatch import RiskWatch
from qkt.worker.heartbeat import HeartbeatReader, HeartbeatWriter
from qkt.worker.record import WorkerFigures

NOW = 1_772_400_000_000


def halt_json(kind: str = "operator", by: str = "operator", killed: bool = False) -> Any:
    reason = "halted by the operator" if kind == "operator" else f"{kind} 5 breached: x at y"
    return {"kind": kind, "reason": reason, "by": by, "since_ms": NOW, "killed": killed}


class Worker:
    """One worker's answers to the verbs and to `/status`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.halt: Any = None
        self.equity = Decimal(1000)
        self.day_start = Decimal(1000)
        self.calls: list[tuple[str, dict[str, str]]] = []

    def command(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        self.calls.append((path, params))
        if path == "/resume":
            if self.halt is None:
                return 409, {"error": {"code": "not_halted", "message": "not halted"}}
            self.halt = None
        elif path == "/halt":
            self.halt = {**halt_json(params["kind"], params["by"]), "reason": params["reason"]}
        else:
            self.halt = {**halt_json(by=params["by"], killed=True), "reason": params["reason"]}
        return 200, {
            "name": self.name,
            "halted": self.halt is not None,
            "halt": self.halt,
            "positions": [],
        }

    def status(self) -> RunningStatus:
        risk = {
            "halted": self.halt is not None, "halt": self.halt, "equity": str(self.equity),
            "day_start_equity": str(self.day_start), "daily_pnl": "0", "peak_equity": "1000",
            "loss_streak": 0, "orders_last_minute": 0, "available": "1000", "leverage": "1",
            "margin": True, "halts": {}, "rejected": 0,
            "limits": {"max_daily_loss": None, "max_drawdown_pct": None,
                       "max_position_notional": None, "max_orders_per_minute": 60,
                       "max_loss_streak": None},
        }  # fmt: skip
        base = {
            "strategy": self.name, "version": 1, "name": self.name, "pid": 1, "state": "running",
            "started_at": "x", "uptime_ms": 1, "file": "/s/x.qkt", "source_hash": "", 
            "start_balance": "1000", "balance": "1000", "equity": str(self.equity),
            "realized": "0", "unrealized": "0", "total_pnl": "0", "fees": "0", "positions": [],
            "open_orders": [], "trades": 0, "last_trade": None, "keys": [],
            "last_candle_ts": {}, "warm": True, "candles": {}, "warmup_candles": 0,
            "fee_bps": "0", "slippage_bps": "0", "fill_at": "close", "sim": True,
            "subscriber": None, "events": {"last_id": 0, "subscribers": 0, "dropped": 0},
            "restarts": 0, "port": 1, "file_changed": False, "risk": risk,
        }  # fmt: skip
        return decode(RunningStatus, base)


class Probe:
    def __init__(self, workers: dict[int, Worker]) -> None:
        self.workers = workers

    async def command(self, port: int, path: str, params: dict[str, str]) -> tuple[int, Any]:
        return self.workers[port].command(path, params)


class Registry:
    def __init__(self, handles: list[WorkerHandle], workers: dict[str, Worker]) -> None:
        self._handles = {h.name: h for h in handles}
        self.workers = workers
        self.saves = 0

    def get(self, name: str) -> WorkerHandle:
        if name not in self._handles:
            raise NotFoundError(f"no strategy named {name!r} is deployed (see `qkt list`)")
        return self._handles[name]

    def handles(self) -> list[WorkerHandle]:
        return [self._handles[n] for n in sorted(self._handles)]

    def __contains__(self, name: object) -> bool:
        return name in self._handles

    def save(self) -> None:
        self.saves += 1

    async def status_of(self, name: str) -> RunningStatus:
        return self.workers[name].status()

    def read_figures(self) -> dict[str, LastFigures]:
        """As the daemon's registry: what each worker stored in its heartbeat file."""
        found = {}
        for h in self._handles.values():
            text = None if h.heartbeat is None else h.heartbeat.figures()
            figures = None if text is None else figures_from_beat(text)
            if figures is not None:
                found[h.name] = figures
        return found


def handle(name: str, port: int, state: WorkerState = WorkerState.RUNNING) -> WorkerHandle:
    found = WorkerHandle(Deployment(name, f"/s/{name}.qkt", source="x"), ())
    found.state, found.port = state, port
    return found


class Setup:
    def __init__(self, *, crashed: bool = False) -> None:
        self.events: list[Event] = []
        self.workers = {"a": Worker("a"), "b": Worker("b")}
        self.handles = [
            handle("a", 1),
            handle("b", 2, WorkerState.BACKOFF if crashed else WorkerState.RUNNING),
        ]
        self.registry = Registry(self.handles, self.workers)
        self.halts = Halts(self.events.append, clock=lambda: NOW)
        self.halts._registry = self.registry  # type: ignore[assignment]
        self.halts._probe = Probe({1: self.workers["a"], 2: self.workers["b"]})  # type: ignore[assignment]


def test_every_verb_emits_its_event_and_records_the_halt() -> None:
    s = Setup()
    result = asyncio.run(s.halts.halt("a", "why not", "operator"))
    assert [o.name for o in result.strategies] == ["a"] and result.strategies[0].halted
    assert s.handles[0].deployment.halt is not None
    assert s.handles[0].deployment.halt.reason == "why not" and s.registry.saves == 1
    assert s.workers["b"].calls == []
    asyncio.run(s.halts.resume("a", "operator"))
    assert s.handles[0].deployment.halt is None
    asyncio.run(s.halts.kill(None, True, "operator"))
    assert all(h.deployment.halt is not None and h.deployment.halt.killed for h in s.handles)
    assert s.workers["a"].calls[-1] == (
        "/kill",
        {"reason": "killed by the operator", "by": "operator", "flatten": "true"},
    )
    kinds = [(e.kind, e.strategy) for e in s.events]
    assert kinds == [
        (EventKind.HALT, "a"),
        (EventKind.RESUME, "a"),
        (EventKind.KILL, None),
    ]
    assert s.events[0].fields["reason"] == "why not"


def test_unknown_names_and_resumes_of_what_is_not_halted_change_nothing() -> None:
    s = Setup()
    with pytest.raises(NotFoundError):
        asyncio.run(s.halts.halt("nobody", "x", "operator"))
    with pytest.raises(NotHaltedError, match="a is not halted"):
        asyncio.run(s.halts.resume("a", "operator"))
    assert asyncio.run(s.halts.resume(None, "operator")).strategies == []
    assert s.events == [] and all(h.deployment.halt is None for h in s.handles)


def test_a_strategy_without_a_process_is_halted_in_its_record_for_its_next_worker() -> None:
    s = Setup(crashed=True)
    result = asyncio.run(s.halts.halt(None, "stop it", "operator"))
    assert [o.halted for o in result.strategies] == [True, True]
    crashed = s.handles[1].deployment.halt
    assert crashed is not None and crashed.since_ms == NOW and s.workers["b"].calls == []
    asyncio.run(s.halts.resume("b", "operator"))
    assert s.handles[1].deployment.halt is None
    with pytest.raises(NotHaltedError):
        asyncio.run(s.halts.resume("b", "operator"))


def test_a_worker_starting_during_a_kill_gets_it_once_it_answers() -> None:
    s = Setup()
    s.handles[1].state = WorkerState.RESTARTING  # spawned with the spec of before the kill
    asyncio.run(s.halts.kill(None, False, "operator"))
    assert s.workers["b"].calls == [] and s.handles[1].deployment.halt is not None
    s.handles[1].state = WorkerState.RUNNING
    asyncio.run(watch(s).check())
    assert [c[0] for c in s.workers["b"].calls] == ["/kill"]
    assert s.workers["b"].halt is not None and s.workers["b"].halt["killed"]
    assert s.handles[1].deployment.halt is not None and s.handles[1].deployment.halt.killed


def watch(s: Setup, **limits: Any) -> RiskWatch:
    settings = RiskSettings(portfolio=PortfolioLimits(**limits), flatten=False)
    return RiskWatch(s.halts, settings)


def test_a_worker_breach_is_recorded_and_reported_once() -> None:
    s = Setup()
    s.workers["a"].halt = halt_json("max_loss_streak", "risk")
    watcher = watch(s)
    asyncio.run(watcher.check())
    asyncio.run(watcher.check())
    assert s.handles[0].deployment.halt is not None
    assert s.handles[0].deployment.halt.kind == "max_loss_streak"
    assert [(e.kind, e.strategy) for e in s.events] == [
        (EventKind.RISK, "a"),
        (EventKind.HALT, "a"),
    ]
    assert s.events[0].fields["limit"] == "max_loss_streak" and s.events[0].fields["value"] == "x"
    s.workers["a"].halt = None  # e.g. a daily-loss halt lifted at midnight
    asyncio.run(watcher.check())
    assert s.handles[0].deployment.halt is None and s.events[-1].kind is EventKind.RESUME


def test_a_breach_is_reported_even_while_the_operator_works_on_another_strategy() -> None:
    """A verb on `b` while the daemon reads `a` must not hide `a`'s breach; a verb on `a`
    itself does make `a`'s answer stale (the operator's word wins), until the next round."""
    s = Setup()
    s.workers["a"].halt = halt_json("max_orders_per_minute", "risk")
    read = s.registry.status_of

    async def read_during_a_verb_on(target: str, name: str) -> RunningStatus:
        status = await read(name)
        if name == "a":  # the operator's verb lands between the read and the round's end
            await s.halts.halt(target, "by hand", "operator")
        return status

    s.registry.status_of = lambda name: read_during_a_verb_on("b", name)  # type: ignore[method-assign]
    asyncio.run(watch(s).check())
    assert (EventKind.RISK, "a") in [(e.kind, e.strategy) for e in s.events]
    halted = s.handles[0].deployment.halt
    assert halted is not None and halted.kind == "max_orders_per_minute"

    s = Setup()
    s.workers["a"].halt = halt_json("max_orders_per_minute", "risk")
    read = s.registry.status_of
    s.registry.status_of = lambda name: read_during_a_verb_on("a", name)  # type: ignore[method-assign]
    asyncio.run(watch(s).check())
    assert (EventKind.RISK, "a") not in [(e.kind, e.strategy) for e in s.events]
    halted = s.handles[0].deployment.halt
    assert halted is not None and halted.kind == "operator"  # what the verb recorded


def beating(s: Setup, tmp_path: Path) -> tuple[dict[str, HeartbeatWriter], list[str]]:
    """Each worker of `s` beats into a real heartbeat file the daemon's handle maps; the list
    fills with the names whose `/status` the daemon asks for."""
    beats = {}
    for found in s.handles:
        path = tmp_path / found.name / "heartbeat"
        path.parent.mkdir()
        beats[found.name] = HeartbeatWriter(path)
        beats[found.name].beat(0, halts=0)
        found.heartbeat = HeartbeatReader(path)
    read: list[str] = []
    status_of = s.registry.status_of

    async def counted(name: str) -> RunningStatus:
        read.append(name)
        return await status_of(name)

    s.registry.status_of = counted  # type: ignore[method-assign]
    return beats, read


def test_without_daemon_wide_limits_a_worker_is_read_only_when_its_heartbeat_says_its_halt_moved(
    tmp_path: Path,
) -> None:
    """A thousand idle workers must not cost a thousand /status requests every round: the
    heartbeat carries how many times each worker's halt changed, and only a change (or a new
    process) sends the daemon to read it."""
    s = Setup()
    beats, read = beating(s, tmp_path)
    watcher = watch(s)
    asyncio.run(watcher.check())
    assert sorted(read) == ["a", "b"]  # new processes: each read once
    read.clear()
    asyncio.run(watcher.check())
    assert read == []  # nothing moved: nothing asked
    s.workers["a"].halt = halt_json("max_loss_streak", "risk")
    beats["a"].beat(3, halts=1)  # the worker's next beat says its halt changed
    asyncio.run(watcher.check())
    assert read == ["a"]
    halted = s.handles[0].deployment.halt
    assert halted is not None and halted.kind == "max_loss_streak"
    assert [(e.kind, e.strategy) for e in s.events] == [
        (EventKind.RISK, "a"),
        (EventKind.HALT, "a"),
    ]
    read.clear()
    asyncio.run(watch(s, max_daily_loss=Decimal(100)).check())
    # Daemon-wide limits sum every equity: without figures in the heartbeats, all are read.
    assert sorted(read) == ["a", "b"]


def store_figures(writer: HeartbeatWriter, equity: Decimal, day_start: Decimal) -> None:
    """What a worker's beat stores, through the same record."""
    figures = WorkerFigures(
        NOW, str(equity), "0", "0", "0", str(day_start), 0, True, False, last_candle_ts={}
    )
    assert writer.write_figures(orjson.dumps(to_json(figures)))


def test_daemon_wide_limits_take_the_equities_from_the_heartbeats_without_asking(
    tmp_path: Path,
) -> None:
    """Checked every second at a thousand workers, the summed equity must not cost a thousand
    /status requests a second: it comes from the figures each worker stores with its beat."""
    s = Setup()
    beats, read = beating(s, tmp_path)
    for writer in beats.values():
        store_figures(writer, Decimal(1000), Decimal(1000))
    watcher = watch(s, max_daily_loss=Decimal(100))
    asyncio.run(watcher.check())
    assert sorted(read) == ["a", "b"]  # new processes: each read once, for its halt
    read.clear()
    store_figures(beats["a"], Decimal(940), Decimal(1000))
    store_figures(beats["b"], Decimal(970), Decimal(1000))
    asyncio.run(watcher.check())
    assert read == [] and all(h.deployment.halt is None for h in s.handles)  # lost 90
    store_figures(beats["b"], Decimal(960), Decimal(1000))
    asyncio.run(watcher.check())
    assert read == []  # the /status of neither was asked for
    for h in s.handles:  # lost 100 in all: every strategy halted by the daemon
        assert h.deployment.halt is not None and h.deployment.halt.kind == "portfolio_daily_loss"


def test_the_summed_daily_loss_halts_every_strategy_once() -> None:
    s = Setup()
    watcher = watch(s, max_daily_loss=Decimal(100))
    s.workers["a"].equity = Decimal(940)
    s.workers["b"].equity = Decimal(970)
    asyncio.run(watcher.check())
    assert all(h.deployment.halt is None for h in s.handles)  # lost 90: not yet
    s.workers["b"].equity = Decimal(960)
    asyncio.run(watcher.check())
    asyncio.run(watcher.check())
    for h in s.handles:
        assert h.deployment.halt is not None and h.deployment.halt.by == "daemon"
        assert h.deployment.halt.kind == "portfolio_daily_loss"
    assert [c[0] for c in s.workers["a"].calls] == ["/halt"]  # not again on every check
    risk = [e for e in s.events if e.kind is EventKind.RISK]
    assert len(risk) == 1 and risk[0].strategy is None and risk[0].fields["value"] == "100"


def test_the_summed_drawdown_with_flatten_kills_every_strategy() -> None:
    s = Setup()
    settings = RiskSettings(portfolio=PortfolioLimits(max_drawdown_pct=Decimal(10)), flatten=True)
    watcher = RiskWatch(s.halts, settings)
    s.workers["a"].equity = s.workers["a"].day_start = Decimal(1500)
    asyncio.run(watcher.check())  # the peak: 2500
    s.workers["a"].equity = Decimal(1240)  # 2240: 10.4 % below it
    asyncio.run(watcher.check())
    assert [c[0] for c in s.workers["b"].calls] == ["/kill"]
    assert s.workers["b"].calls[0][1]["flatten"] == "true"
    assert "portfolio_drawdown_pct 10 breached" in s.workers["b"].calls[0][1]["reason"]
