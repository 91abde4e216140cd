"""Halt, resume and kill on the engine: entries stop, exits run, and the halt survives a restart."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from qkt.engine.config import EngineConfig
from qkt.engine.events import EngineEvent, OrderEvent, OrderRejectedEvent, RiskEvent, TradeEvent
from qkt.engine.halt import HaltKind, NotHaltedError
from qkt.engine.orders import Fill, Order, OrderRole, OrderStatus
from qkt.engine.protocols import MemoryJournal
from qkt.engine.state import EngineState
from qkt.engine.strategy import StrategyEngine
from qkt.market.models import Candle
from tests.engine.builder import (
    T0,
    D,
    ProgramBuilder,
    Run,
    buy,
    candle,
    close,
    level,
    limit_at,
    run,
    sell,
)


def always_enters() -> ProgramBuilder:
    """Enters whenever flat (every candle's rule is true), closes at 105 or more."""
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(p.position("btc") == 0, buy("btc", 1))
    p.rule((p.position("btc") > 0) & (btc.close >= 105), close("btc"))
    return p


def rising(start: int, count: int, first: int = 100) -> list[Candle]:
    """`count` candles from index `start` closing at first, first + 1, ..."""
    return [candle(start + i, first + i - 1, None, None, first + i) for i in range(count)]


def fills_in(events: list[EngineEvent]) -> list[Fill]:
    return [e.fill for e in events if isinstance(e, TradeEvent)]


def orders_in(events: list[EngineEvent]) -> list[Order]:
    return [e.order for e in events if isinstance(e, OrderEvent)]


def test_a_halt_blocks_entries_for_30_candles_while_close_still_closes_and_resume_reenters() -> (
    None
):
    r = run(always_enters().build(), [candle(0, 99, 100, 99, 100)], margin=EngineConfig().margin)
    assert [f.side.value for f in r.fills] == ["BUY"]
    events = r.engine.halt("maintenance", by="alice")
    assert [(e.action, e.kind, e.reason, e.by) for e in events if isinstance(e, RiskEvent)] == [
        ("halt", "operator", "maintenance", "alice")
    ]
    info = r.engine.halt_info
    assert info is not None and info.kind is HaltKind.OPERATOR and info.by == "alice"
    assert info.since_ms == candle(0, 1).end_ms  # the default clock: the last candle's close

    halted = r.feed(rising(1, 30, first=101))  # 101..130: CLOSE at 105, then flat all along
    fills = fills_in(halted)
    assert [(f.side.value, f.role, f.price) for f in fills] == [("SELL", OrderRole.CLOSE, D(105))]
    rejected = [e for e in halted if isinstance(e, OrderRejectedEvent)]
    assert len(rejected) == 25  # every candle after the close: the entry rule fired, refused
    assert rejected[0].reason == "halted (operator): maintenance"
    assert rejected[0].order.status is OrderStatus.REJECTED
    assert r.journal.orders[-1].status is OrderStatus.REJECTED
    assert r.engine.positions == ()

    resumed = r.engine.resume(by="alice")
    assert [(e.action, e.kind) for e in resumed if isinstance(e, RiskEvent)] == [
        ("resume", "operator")
    ]
    assert r.engine.halt_info is None
    after = r.feed([candle(31, 130, 130, 100, 100)])  # below 105: the entry stays open
    assert [(f.side.value, f.role) for f in fills_in(after)] == [("BUY", OrderRole.ENTRY)]


def test_a_halt_cancels_resting_entries_but_keeps_the_stops_that_protect_positions() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    stop = {"stop_loss": level("BY", 5)}
    p.rule(btc.close == 100, buy("btc", 1, **stop))  # type: ignore[arg-type]
    p.rule(btc.close == 101, buy("btc", 1, order_type=limit_at(90)))
    r = run(p.build(), [candle(0, 99, 100, 99, 100), candle(1, 100, 101, 100, 101)])
    assert {o.role for o in r.engine.open_orders} == {OrderRole.STOP_LOSS, OrderRole.ENTRY}
    events = r.engine.halt("risk review")
    cancelled = orders_in(events)
    assert [(o.role, o.status) for o in cancelled] == [(OrderRole.ENTRY, OrderStatus.CANCELLED)]
    assert [o.role for o in r.engine.open_orders] == [OrderRole.STOP_LOSS]
    r.feed([candle(2, 101, 101, 94, 96)])  # the stop loss still runs while halted
    assert [(f.role, f.price) for f in r.fills[1:]] == [(OrderRole.STOP_LOSS, D(95))]
    assert r.engine.positions == ()


def test_a_halted_entry_that_only_reduces_a_position_still_fills() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 3))
    p.rule(btc.close == 102, buy("btc", 1))  # would increase: refused
    p.rule(btc.close == 103, sell("btc", 1))
    p.rule(btc.close == 104, sell("btc", 5))  # would flip short: refused
    r = run(p.build(), [candle(0, 99, 100, 99, 100)])
    r.engine.halt("x")
    r.feed([candle(i, 100, None, None, 100 + i) for i in (2, 3, 4)])
    assert [(f.side.value, f.qty) for f in r.fills] == [("BUY", D(3)), ("SELL", D(1))]
    reasons = [e.reason for e in r.events if isinstance(e, OrderRejectedEvent)]
    assert len(reasons) == 2 and all(reason.startswith("halted") for reason in reasons)


def test_kill_cancels_every_order_flattens_and_reports_what_is_left() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    eth = p.stream("eth", "SIM:ETHUSDT:1m")
    p.rule(btc.close == 100, buy("btc", 1, stop_loss=level("BY", 5)))  # type: ignore[arg-type]
    p.rule(eth.close == 10, buy("eth", 2))
    bars = [candle(0, 99, 100, 99, 100), candle(0, 9, 10, 9, 10, key="SIM:ETHUSDT:1m")]
    killed = run(p.build(), bars)
    result = killed.engine.kill(flatten=True, reason="panic", by="bob")
    assert result.positions == ()
    assert killed.engine.open_orders == ()
    closes = fills_in(result.events)
    assert sorted((f.instrument.symbol, f.side.value, f.role) for f in closes) == [
        ("BTCUSDT", "SELL", OrderRole.CLOSE),
        ("ETHUSDT", "SELL", OrderRole.CLOSE),
    ]
    info = killed.engine.halt_info
    assert info is not None and info.killed and info.reason == "panic" and info.by == "bob"
    kill_events = [e for e in result.events if isinstance(e, RiskEvent)]
    assert [(e.action, e.kind) for e in kill_events] == [("kill", "operator")]

    kept = run(p.build(), bars)
    left = kept.engine.kill(flatten=False)
    assert [(pos.instrument.symbol, pos.qty) for pos in left.positions] == [
        ("BTCUSDT", D(1)),
        ("ETHUSDT", D(2)),
    ]
    assert kept.engine.open_orders == ()  # the stop loss too: kill cancels everything


def test_a_halt_survives_export_json_and_restore_and_still_blocks_entries() -> None:
    program = always_enters().build()
    journal = MemoryJournal()
    engine = StrategyEngine(program, EngineConfig(), journal)
    engine.on_candle(candle(0, 99, 100, 99, 100))
    engine.halt("overnight", by="ops")
    data = json.loads(json.dumps(engine.export_state().to_json()))
    restored = StrategyEngine(program, EngineConfig(), journal, EngineState.from_json(data))
    info = restored.halt_info
    assert info is not None and (info.reason, info.by, info.kind) == (
        "overnight",
        "ops",
        HaltKind.OPERATOR,
    )
    again = Run(restored, journal, [])
    again.feed(rising(1, 10, first=101))
    assert [(f.side.value, f.role) for f in again.fills] == [("SELL", OrderRole.CLOSE)]


def test_a_state_saved_before_halts_existed_loads_as_not_halted() -> None:
    engine = StrategyEngine(always_enters().build())
    data = engine.export_state().to_json()
    del data["risk"]
    assert (
        StrategyEngine(always_enters().build(), state=EngineState.from_json(data)).halt_info is None
    )


def test_resume_of_a_strategy_not_halted_is_a_clear_error_and_changes_nothing() -> None:
    engine = StrategyEngine(always_enters().build())
    with pytest.raises(NotHaltedError, match="not halted"):
        engine.resume()
    assert engine.halt_info is None
    assert NotHaltedError.http_status == 409


def test_the_operator_s_halt_replaces_a_limit_s_and_a_limit_never_replaces_the_operator_s() -> None:
    engine = StrategyEngine(always_enters().build(), clock=lambda: 5)
    engine.halt("daemon-wide daily loss", by="daemon", kind=HaltKind.PORTFOLIO_DAILY_LOSS)
    engine.halt("looking into it")
    info = engine.halt_info
    assert info is not None and info.kind is HaltKind.OPERATOR and info.since_ms == 5
    engine.halt("later breach", by="daemon", kind=HaltKind.PORTFOLIO_DRAWDOWN_PCT)
    info = engine.halt_info
    assert info is not None and info.reason == "looking into it"


def test_kill_without_a_price_leaves_that_position_out_of_reach_but_reports_it() -> None:
    engine = StrategyEngine(always_enters().build())
    result = engine.kill(flatten=True)
    assert result.positions == () and engine.halt_info is not None


def test_balances_are_untouched_by_halt_and_resume() -> None:
    r = run(always_enters().build(), [candle(0, 99, 100, 99, 100)])
    before = r.engine.account
    r.engine.halt("x")
    r.engine.resume()
    assert r.engine.account == before
    assert r.engine.account.balance == Decimal(10_000)


def test_a_daemon_wide_daily_halt_before_any_candle_lifts_only_at_the_next_midnight() -> None:
    now = [T0 + 3_600_000]
    engine = StrategyEngine(always_enters().build(), clock=lambda: now[0])
    engine.halt("together lost 900", by="daemon", kind=HaltKind.PORTFOLIO_DAILY_LOSS)
    assert engine.tick() == [] and engine.halt_info is not None
    engine.on_candle(candle(60, 100))
    assert engine.halt_info is not None and engine.positions == ()
    now[0] = T0 + 86_400_000
    assert [e.action for e in engine.tick() if isinstance(e, RiskEvent)] == ["lift"]
    assert engine.halt_info is None


def test_a_halt_survives_an_edit_of_the_rules() -> None:
    engine = StrategyEngine(always_enters().build())
    engine.on_candle(candle(0, 99, 100, 99, 100))
    engine.halt("edited while halted")
    edited = always_enters()
    edited.rule(edited.position("btc") > 5, close("btc"))
    restarted = StrategyEngine(edited.build(), state=engine.export_state())
    assert restarted.halt_info is not None
    assert restarted.halt_info.reason == "edited while halted"
