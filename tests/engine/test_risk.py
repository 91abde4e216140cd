"""Per-strategy risk limits: each one driven past its limit halts with the limit, the value and
the time; the daily loss lifts at 00:00 UTC by itself (the clock is injected, nobody sleeps)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qkt.engine.config import EngineConfig
from qkt.engine.events import EngineEvent, OrderRejectedEvent, RiskEvent, TradeEvent
from qkt.engine.halt import HaltKind
from qkt.engine.limits import RiskLimitError, RiskLimits
from qkt.engine.protocols import MemoryJournal
from qkt.engine.strategy import StrategyEngine
from qkt.log import iso_utc
from tests.engine.builder import T0, D, ProgramBuilder, Run, buy, candle, close, limit_at, run

DAY = 1440  # one-minute candles in a day


def risk_events(events: list[EngineEvent]) -> list[RiskEvent]:
    return [e for e in events if isinstance(e, RiskEvent)]


def buys_10_then_holds() -> ProgramBuilder:
    """Buys 10 at the first candle (close 100); rules fire on every candle after that."""
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 10))
    p.rule(btc.close == 120, buy("btc", 1))  # an entry to show the halt blocks it
    return p


def limited(program: ProgramBuilder, **limits: object) -> Run:
    return run(program.build(), [candle(0, 100)], limits=RiskLimits(**limits))  # type: ignore[arg-type]


def test_the_daily_loss_halts_at_its_limit_and_lifts_by_itself_at_midnight_utc() -> None:
    r = limited(buys_10_then_holds(), max_daily_loss=D(100))
    r.feed([candle(1, 100, None, None, D("90.1"))])  # lost 99: not yet
    assert r.engine.halt_info is None
    events = r.feed([candle(2, D("90.1"), None, None, 90)])  # lost 100: reached
    [event] = risk_events(events)
    at = candle(2, 90).end_ms
    assert (event.action, event.kind, event.value, event.limit, event.by) == (
        "halt",
        "max_daily_loss",
        "100",
        "100",
        "risk",
    )
    assert event.reason == f"max_daily_loss 100 breached: lost 100 since 00:00 UTC at {iso_utc(at)}"
    info = r.engine.halt_info
    assert info is not None and info.kind is HaltKind.MAX_DAILY_LOSS and info.since_ms == at

    later = r.feed([candle(3, 90, None, None, 120), candle(DAY - 2, 120, None, None, 80)])
    assert [e.reason[:7] for e in later if isinstance(e, OrderRejectedEvent)] == ["halted "]
    assert (
        risk_events(later) == []
    )  # still past the limit, still halted: one event, not one a candle

    midnight = r.feed([candle(DAY - 1, 80, None, None, 120)])  # it closes at 00:00 UTC
    assert [(e.action, e.kind) for e in risk_events(midnight)] == [("lift", "max_daily_loss")]
    assert r.engine.halt_info is None
    assert [(f.side.value, f.qty) for f in r.fills] == [("BUY", D(10)), ("BUY", D(1))]
    assert r.engine.risk.day_start_equity == Decimal(10_200)  # 10 held at 120 at 00:00


def test_a_daily_loss_halt_lifts_with_the_injected_clock_and_no_candle() -> None:
    now = [T0 + 3_600_000]
    engine = StrategyEngine(
        buys_10_then_holds().build(),
        EngineConfig(limits=RiskLimits(max_daily_loss=D(50))),
        MemoryJournal(),
        clock=lambda: now[0],
    )
    engine.on_candle(candle(0, 100))
    engine.on_candle(candle(1, 100, None, None, 94))
    assert engine.halt_info is not None and engine.halt_info.since_ms == now[0]
    now[0] = T0 + 86_400_000 - 1
    assert engine.tick() == [] and engine.halt_info is not None
    now[0] = T0 + 86_400_000
    [lifted] = engine.tick()
    assert isinstance(lifted, RiskEvent) and lifted.action == "lift"
    assert engine.halt_info is None


def test_the_drawdown_halts_from_the_peak_and_needs_a_resume_even_after_midnight() -> None:
    r = limited(buys_10_then_holds(), max_drawdown_pct=D(10))
    r.feed([candle(1, 100, None, None, 200)])  # equity 11,000: the peak
    r.feed([candle(2, 200, None, None, 91)])  # equity 9,910: 9.9 % below
    assert r.engine.halt_info is None
    [event] = risk_events(r.feed([candle(3, 91, None, None, 90)]))  # 9,900: exactly 10 %
    assert (event.kind, event.value, event.limit) == ("max_drawdown_pct", "10", "10")
    r.feed([candle(DAY + 5, 90, None, None, 90)])
    info = r.engine.halt_info
    assert info is not None and info.kind is HaltKind.MAX_DRAWDOWN_PCT
    r.engine.resume()
    assert risk_events(r.feed([candle(DAY + 6, 90, None, None, 89)])) == []  # measured afresh
    assert r.engine.risk.peak_equity == Decimal(9_900)


def test_an_order_past_the_position_notional_is_rejected_whole_and_halts() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 4))  # 400: fine
    p.rule(btc.close == 101, buy("btc", 2))  # 6 at 101 = 606 > 500: rejected, not clipped
    r = run(p.build(), [candle(0, 100), candle(1, 100, None, None, 101)],
            limits=RiskLimits(max_position_notional=D(500)))  # fmt: skip
    assert [(f.side.value, f.qty) for f in r.fills] == [("BUY", D(4))]
    [rejected] = [e for e in r.events if isinstance(e, OrderRejectedEvent)]
    assert rejected.reason.startswith("max_position_notional 500 breached: an order for a")
    assert "worth 606" in rejected.reason
    [event] = risk_events(r.events)
    assert (event.kind, event.value, event.limit) == ("max_position_notional", "606", "500")
    assert r.engine.halt_info is not None


def test_the_order_that_makes_one_too_many_in_a_minute_is_refused_and_halts() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    for _ in range(5):  # a runaway strategy: five entries on every candle
        p.rule(btc.close > 0, buy("btc", 1))
    r = run(p.build(), [candle(0, 100)], limits=RiskLimits(max_orders_per_minute=3))
    assert len(r.fills) == 3
    [event] = risk_events(r.events)
    assert (event.kind, event.value, event.limit) == ("max_orders_per_minute", "4", "3")
    assert len([e for e in r.events if isinstance(e, OrderRejectedEvent)]) == 2


def test_the_default_order_rate_guard_stops_a_runaway_loop() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    for _ in range(70):
        p.rule(btc.close > 0, buy("btc", D("0.001")))
    r = run(p.build(), [candle(0, 100)], limits=RiskLimits())
    assert len(r.fills) == 60
    assert r.engine.halt_info is not None
    assert r.engine.halt_info.kind is HaltKind.MAX_ORDERS_PER_MINUTE


def test_orders_older_than_a_minute_do_not_count() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close > 0, buy("btc", 1))
    p.rule(btc.close > 0, close("btc"))
    r = run(
        p.build(), [candle(i, 100) for i in range(30)], limits=RiskLimits(max_orders_per_minute=2)
    )
    assert r.engine.halt_info is None and len(r.fills) == 60


def test_a_losing_streak_halts_and_a_win_resets_it() -> None:
    p = ProgramBuilder()
    p.stream("btc")
    p.rule(p.position("btc") > 0, close("btc"))  # closes what the previous candle bought
    p.rule(p.position("btc") == 0, buy("btc", 1))
    # 100 -> 99 loses, 99 -> 101 wins, then three losses in a row.
    bars = [candle(i, price) for i, price in enumerate([100, 99, 101, 100, 99, 98, 97])]
    r = run(p.build(), bars, limits=RiskLimits(max_loss_streak=3))
    closing = [f.realized for f in r.fills if f.role.value == "CLOSE"]
    assert closing == [D(-1), D(2), D(-1), D(-1), D(-1)]
    [event] = risk_events(r.events)
    assert (event.kind, event.value, event.limit) == ("max_loss_streak", "3", "3")
    assert r.engine.risk.loss_streak == 3
    assert not any(isinstance(e, TradeEvent) and e.ts > event.ts for e in r.events)


def test_every_limit_is_off_but_the_order_rate_guard_by_default() -> None:
    limits = RiskLimits()
    assert limits.to_json() == {
        "max_daily_loss": None,
        "max_drawdown_pct": None,
        "max_position_notional": None,
        "max_orders_per_minute": 60,
        "max_loss_streak": None,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_daily_loss", D(-5)),
        ("max_drawdown_pct", D(0)),
        ("max_drawdown_pct", D(101)),
        ("max_position_notional", D(0)),
        ("max_orders_per_minute", 0),
        ("max_loss_streak", -1),
    ],
)
def test_a_bad_limit_cannot_even_be_built(field: str, value: object) -> None:
    with pytest.raises(RiskLimitError, match="--" + field.replace("_", "-")):
        RiskLimits(**{field: value})  # type: ignore[arg-type]


def test_risk_status_has_what_status_and_the_daemon_need() -> None:
    r = limited(buys_10_then_holds(), max_daily_loss=D(100))
    r.feed([candle(1, 100, None, None, 95)])
    status = r.engine.risk_status()
    assert status == {
        "halted": False,
        "halt": None,
        "limits": {
            "max_daily_loss": "100",
            "max_drawdown_pct": None,
            "max_position_notional": None,
            "max_orders_per_minute": 60,
            "max_loss_streak": None,
        },
        "equity": "9950",
        "day_start_equity": "10000",
        "daily_pnl": "-50",
        "peak_equity": "10000",
        "loss_streak": 0,
        "orders_last_minute": 0,  # the buy was placed a minute before this candle's close
        "available": "9000",
    }
    r.feed([candle(2, 95, None, None, 89)])
    halted = r.engine.risk_status()
    assert halted["halted"] is True and halted["halt"]["kind"] == "max_daily_loss"


def test_a_resting_entry_past_the_notional_when_it_fills_is_rejected_once() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 4, order_type=limit_at(99)))
    p.rule(btc.close == 101, buy("btc", 1))  # 1 at 101, then the limit would make it 5 x 99
    bars = [candle(0, 100), candle(1, 100, None, None, 101), candle(2, 101, 101, 98, 99)]
    r = run(p.build(), bars, limits=RiskLimits(max_position_notional=D(450)))
    assert [(f.qty, f.price) for f in r.fills] == [(D(1), D(101))]
    rejected = [e for e in r.events if isinstance(e, OrderRejectedEvent)]
    assert [e.order.id for e in rejected] == [1]
    assert "worth 495" in rejected[0].reason
    statuses = [o.status.value for o in r.journal.orders if o.id == 1]
    assert statuses == ["OPEN", "REJECTED"]
    assert r.engine.halt_info is not None and r.engine.open_orders == ()


def test_a_drawdown_breach_while_daily_halted_takes_over_and_midnight_does_not_lift_it() -> None:
    r = limited(buys_10_then_holds(), max_daily_loss=D(100), max_drawdown_pct=D(2))
    r.feed([candle(1, 100, None, None, 90)])  # lost 100 (1 %): the daily loss halts first
    info = r.engine.halt_info
    assert info is not None and info.kind is HaltKind.MAX_DAILY_LOSS
    r.feed([candle(2, 90, None, None, 80)])  # 2 % below the peak: needs a resume now
    info = r.engine.halt_info
    assert info is not None and info.kind is HaltKind.MAX_DRAWDOWN_PCT
    assert [e.kind for e in risk_events(r.events)] == ["max_daily_loss", "max_drawdown_pct"]
    r.feed([candle(DAY + 1, 80)])
    assert r.engine.halt_info is not None and r.engine.halt_info.kind is HaltKind.MAX_DRAWDOWN_PCT
