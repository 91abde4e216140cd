"""Each order type's fill rule, TIF, brackets, OCO, fees, slippage, flips, PnL to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qkt.dsl.program import SizePosition, TimeInForce
from qkt.engine.config import FillAt
from qkt.engine.events import OrderEvent
from qkt.engine.orders import OrderKind, OrderRole, OrderStatus, Side
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
    stop_at,
    trailing,
)


def once_at_100(action: object, **config: object) -> Run:
    """A program whose only rule fires on the candle that closes at exactly 100."""
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, action)  # type: ignore[arg-type]
    return run(p.build(), [candle(0, 99, 100, 98, 100)], **config)


def fills_of(r: Run) -> list[tuple[str, Decimal, Decimal, int]]:
    return [(f.side.value, f.qty, f.price, f.ts) for f in r.fills]


def end(i: int) -> int:
    return T0 + (i + 1) * 60_000


def start(i: int) -> int:
    return T0 + i * 60_000


# -- market ----------------------------------------------------------------------------------


def test_market_fills_at_the_close_of_the_signalling_candle() -> None:
    r = once_at_100(buy("btc", 2))
    assert fills_of(r) == [("BUY", D(2), D(100), end(0))]
    assert r.engine.positions[0].qty == 2


def test_market_fills_at_the_next_open_when_configured() -> None:
    r = once_at_100(buy("btc", 2), fill_at=FillAt.NEXT_OPEN)
    assert r.fills == []
    assert [o.kind for o in r.engine.open_orders] == [OrderKind.MARKET]
    r.feed([candle(1, 101, 103, 100, 102)])
    assert fills_of(r) == [("BUY", D(2), D(101), start(1))]


def test_a_next_open_fill_ignores_a_candle_that_opened_before_the_signal() -> None:
    """A late candle of the finest stream (older than the signal) does not fill the order."""
    p = ProgramBuilder()
    p.stream("fine", "SIM:BTCUSDT:1m")
    hourly = p.stream("hourly", "SIM:BTCUSDT:1h")
    p.rule(hourly.close == 100, buy("hourly", 1))
    r = run(
        p.build(), [candle(0, 99, 100, 98, 100, key="SIM:BTCUSDT:1h")], fill_at=FillAt.NEXT_OPEN
    )
    r.feed([candle(59, 97, key="SIM:BTCUSDT:1m")])  # 00:59, before the hourly signal at 01:00
    assert r.fills == []
    r.feed([candle(60, 101, key="SIM:BTCUSDT:1m")])
    assert fills_of(r) == [("BUY", D(1), D(101), start(60))]


# -- limit -----------------------------------------------------------------------------------


def test_limit_rests_then_fills_at_the_limit_or_better() -> None:
    r = once_at_100(buy("btc", 1, order_type=limit_at(95)))
    assert r.fills == []
    r.feed([candle(1, 99, 100, 96, 97)])  # low 96: not touched
    assert r.fills == []
    r.feed([candle(2, 97, 98, 94, 96)])  # touched inside the candle: at the limit
    assert fills_of(r) == [("BUY", D(1), D(95), end(2))]

    gap = once_at_100(sell("btc", 1, order_type=limit_at(105)))
    gap.feed([candle(1, 107, 108, 104, 106)])  # opened through the limit: at the (better) open
    assert fills_of(gap) == [("SELL", D(1), D(107), start(1))]


def test_a_resting_order_never_fills_on_the_candle_that_placed_it() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1, order_type=limit_at(95)))
    r = run(p.build(), [candle(0, 99, 100, 90, 100)])  # its own low 90 is below the limit
    assert r.fills == []
    assert len(r.engine.open_orders) == 1


# -- stop, stop-limit ------------------------------------------------------------------------


def test_stop_fills_at_its_level_or_at_the_open_when_gapped_over() -> None:
    r = once_at_100(buy("btc", 1, order_type=stop_at(105)))
    r.feed([candle(1, 101, 104, 100, 103)])
    assert r.fills == []
    r.feed([candle(2, 103, 106, 102, 104)])
    assert fills_of(r) == [("BUY", D(1), D(105), end(2))]

    gapped = once_at_100(buy("btc", 1, order_type=stop_at(105)))
    gapped.feed([candle(1, 108, 109, 107, 108)])
    assert fills_of(gapped) == [("BUY", D(1), D(108), start(1))]

    down = once_at_100(sell("btc", 1, order_type=stop_at(95)))
    down.feed([candle(1, 92, 93, 90, 91)])
    assert fills_of(down) == [("SELL", D(1), D(92), start(1))]


def test_stop_limit_triggers_then_fills_within_its_limit() -> None:
    r = once_at_100(buy("btc", 1, order_type=stop_at(105, 106)))
    r.feed([candle(1, 101, 107, 100, 104)])
    assert fills_of(r) == [("BUY", D(1), D(105), end(1))]

    # Gapped past the limit at the open: it may still fill at the limit later in the candle.
    gap = once_at_100(buy("btc", 1, order_type=stop_at(105, 106)))
    gap.feed([candle(1, 108, 109, "105.5", 107)])
    assert fills_of(gap) == [("BUY", D(1), D(106), end(1))]

    # Gapped past the limit and stays above it: triggered, rests as a limit.
    rest = once_at_100(buy("btc", 1, order_type=stop_at(105, 106)))
    rest.feed([candle(1, 108, 109, 107, 108)])
    assert rest.fills == []
    [order] = rest.engine.open_orders
    assert order.triggered
    triggered = [e.reason for e in rest.events if isinstance(e, OrderEvent)]
    assert triggered == ["placed", "stop triggered"]
    rest.feed([candle(2, 107, 107, 104, 105)])
    assert fills_of(rest) == [("BUY", D(1), D(106), end(2))]


def test_stop_limit_triggered_inside_a_candle_beyond_its_limit_waits_for_the_next() -> None:
    """The low may have come before the trigger: no fill on the trigger candle."""
    r = once_at_100(buy("btc", 1, order_type=stop_at(105, 104)))
    r.feed([candle(1, 101, 106, 100, 105)])
    assert r.fills == []
    r.feed([candle(2, 103, 104, 102, 103)])
    assert fills_of(r) == [("BUY", D(1), D(103), start(2))]


# -- trailing --------------------------------------------------------------------------------


def test_trailing_by_distance_follows_the_best_price() -> None:
    r = once_at_100(sell("btc", 1, order_type=trailing(5)))  # level 95 from the close 100
    r.feed([candle(1, 100, 110, 96, 108)])  # not hit at 95; the anchor moves to 110 -> 105
    assert r.fills == []
    assert r.engine.open_orders[0].anchor == 110
    r.feed([candle(2, 108, 109, 104, 106)])
    assert fills_of(r) == [("SELL", D(1), D(105), end(2))]


def test_trailing_pct_follows_the_best_price_and_gaps_fill_at_the_open() -> None:
    r = once_at_100(buy("btc", 1, order_type=trailing("0.1", percent=True)))  # level 110
    r.feed([candle(1, 100, 105, 80, 85)])  # anchor 80 -> level 88
    assert r.fills == []
    r.feed([candle(2, 90, 92, 89, 91)])  # opens above 88: at the open
    assert fills_of(r) == [("BUY", D(1), D(90), start(2))]


# -- time in force ---------------------------------------------------------------------------


def test_ioc_and_fok_fill_now_or_are_cancelled() -> None:
    for tif in (TimeInForce.IOC, TimeInForce.FOK):
        filled = once_at_100(buy("btc", 1, order_type=limit_at(101), tif=tif))
        assert fills_of(filled) == [("BUY", D(1), D(100), end(0))]
        missed = once_at_100(buy("btc", 1, order_type=limit_at(99), tif=tif))
        assert missed.fills == [] and missed.engine.open_orders == ()
        statuses = [o.status for o in missed.journal.orders]
        assert statuses == [OrderStatus.CANCELLED]
        stop = once_at_100(sell("btc", 1, order_type=stop_at(101), tif=tif))
        assert fills_of(stop) == [("SELL", D(1), D(100), end(0))]


def test_day_orders_expire_at_the_end_of_the_utc_day_gtc_orders_do_not() -> None:
    outcomes = {}
    for tif in (TimeInForce.DAY, TimeInForce.GTC):
        p = ProgramBuilder()
        btc = p.stream("btc")
        p.rule(btc.close == 100, buy("btc", 1, order_type=limit_at(90), tif=tif))
        r = run(p.build(), [candle(1400, 99, 100, 98, 100)])  # placed at 23:21 UTC
        r.feed([candle(1439, 95, 96, 94, 95)])  # 23:59: not touched
        r.feed([candle(1440, 91, 92, 85, 88)])  # 00:00 the next day: touched
        outcomes[tif] = (fills_of(r), [o.status for o in r.journal.orders])
    assert outcomes[TimeInForce.DAY] == ([], [OrderStatus.OPEN, OrderStatus.EXPIRED])
    assert outcomes[TimeInForce.GTC] == (
        [("BUY", D(1), D(90), end(1440))],
        [OrderStatus.OPEN, OrderStatus.FILLED],
    )


# -- brackets, OCO, trailing exits ----------------------------------------------------------


def bracket_run(*bars: tuple[int, int, int, int], side: str = "BUY", **exits: object) -> Run:
    action = (buy if side == "BUY" else sell)("btc", 1, **exits)
    r = once_at_100(action)
    r.feed([candle(i + 1, *bar) for i, bar in enumerate(bars)])
    return r


def test_bracket_stop_loss_fills_and_cancels_the_take_profit() -> None:
    r = bracket_run((99, 100, 94, 96), stop_loss=level("BY", 5), take_profit=level("BY", 10))
    assert fills_of(r)[1:] == [("SELL", D(1), D(95), end(1))]
    final = {o.role: (o.status, o.stop or o.limit) for o in r.journal.orders if o.role.is_exit}
    assert final == {
        OrderRole.STOP_LOSS: (OrderStatus.FILLED, D(95)),
        OrderRole.TAKE_PROFIT: (OrderStatus.CANCELLED, D(110)),
    }
    assert r.engine.open_orders == ()


def test_bracket_take_profit_fills_and_cancels_the_stop_loss() -> None:
    r = bracket_run(
        (101, 111, 100, 109), stop_loss=level("PCT", "0.05"), take_profit=level("RR", 2)
    )
    assert fills_of(r)[1:] == [("SELL", D(1), D(110), end(1))]  # 100 + 2 * (100 - 95)
    cancelled = [o.role for o in r.journal.orders if o.status is OrderStatus.CANCELLED]
    assert cancelled == [OrderRole.STOP_LOSS]


def test_a_candle_touching_both_exits_fills_the_stop_loss() -> None:
    r = bracket_run((100, 120, 80, 101), stop_loss=level("AT", 95), take_profit=level("AT", 105))
    assert fills_of(r)[1:] == [("SELL", D(1), D(95), end(1))]
    assert r.engine.account.realized_pnl == -5


def test_a_short_bracket_mirrors_the_long_one() -> None:
    r = bracket_run(
        (101, 106, 100, 104), side="SELL", stop_loss=level("BY", 5), take_profit=level("BY", 8)
    )
    assert fills_of(r) == [("SELL", D(1), D(100), end(0)), ("BUY", D(1), D(105), end(1))]


def test_closing_the_position_by_rule_cancels_both_bracket_exits() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1, stop_loss=level("BY", 5), take_profit=level("BY", 5)))
    p.rule(btc.close == 102, close("btc"))
    r = run(p.build(), [candle(0, 99, 100, 98, 100), candle(1, 100, 103, 99, 102)])
    assert fills_of(r) == [("BUY", D(1), D(100), end(0)), ("SELL", D(1), D(102), end(1))]
    reasons = {
        e.order.role: e.reason
        for e in r.events
        if isinstance(e, OrderEvent) and e.order.status is OrderStatus.CANCELLED
    }
    assert reasons == {
        OrderRole.STOP_LOSS: "closed by rule",
        OrderRole.TAKE_PROFIT: "closed by rule",
    }
    r.feed([candle(2, 102, 120, 80, 101)])  # both old levels touched: nothing happens
    assert len(r.fills) == 2 and r.engine.open_orders == ()


def test_a_position_going_to_zero_any_other_way_cancels_its_exits() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1, trailing_exit=trailing(3)))
    p.rule(btc.close == 102, sell("btc", 1))
    r = run(p.build(), [candle(0, 99, 100, 98, 100), candle(1, 100, 103, 100, 102)])
    [trail] = [o for o in r.journal.orders if o.role is OrderRole.TRAILING_EXIT][-1:]
    assert trail.status is OrderStatus.CANCELLED
    assert r.engine.open_orders == () and r.engine.positions == ()


def test_trailing_exit_attached_to_an_entry() -> None:
    r = bracket_run((100, 110, 99, 108), (108, 109, 104, 105), trailing_exit=trailing(5))
    # Entry at 100 -> level 95; the first candle's high 110 moves it to 105; then hit.
    assert fills_of(r)[1:] == [("SELL", D(1), D(105), end(2))]


def test_oco_places_two_exits_that_cancel_each_other() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 2))
    p.rule(btc.close == 101, sell("btc", sizing=SizePosition("btc"), oco=(95, 110)))
    r = run(p.build(), [candle(0, 99, 100, 98, 100), candle(1, 100, 102, 99, 101)])
    kinds = [(o.kind, o.stop or o.limit, o.qty) for o in r.engine.open_orders]
    assert kinds == [(OrderKind.STOP, D(95), D(2)), (OrderKind.LIMIT, D(110), D(2))]
    r.feed([candle(2, 105, 111, 104, 109)])
    assert fills_of(r)[1:] == [("SELL", D(2), D(110), end(2))]
    assert r.engine.open_orders == ()
    assert r.journal.orders[-1].role is OrderRole.OCO_STOP
    assert r.journal.orders[-1].status is OrderStatus.CANCELLED


def test_oco_without_a_position_to_close_is_skipped_and_logged_once() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close > 0, sell("btc", 1, oco=(95, 110)))
    r = run(p.build(), [candle(i, 100) for i in range(3)])
    assert r.engine.open_orders == ()
    assert r.warnings == ["rule 0: OCO SELL exits need a position to close; skipped (logged once)"]


def test_exits_of_an_entry_filled_at_the_open_are_live_for_that_candle() -> None:
    r = once_at_100(buy("btc", 1, stop_loss=level("BY", 5)), fill_at=FillAt.NEXT_OPEN)
    r.feed([candle(1, 100, 101, 94, 97)])
    assert fills_of(r) == [("BUY", D(1), D(100), start(1)), ("SELL", D(1), D(95), end(1))]


def test_exits_of_an_entry_filled_inside_a_candle_wait_for_the_next_candle() -> None:
    r = once_at_100(buy("btc", 1, order_type=stop_at(102), stop_loss=level("BY", 4)))
    r.feed([candle(1, 100, 103, 97, 101)])  # entry at 102; its stop 98 is not checked here
    assert fills_of(r) == [("BUY", D(1), D(102), end(1))]
    r.feed([candle(2, 101, 101, 97, 99)])
    assert fills_of(r)[1:] == [("SELL", D(1), D(98), end(2))]


# -- fees, slippage, flips, PnL --------------------------------------------------------------


def test_fees_and_slippage_go_against_the_trader() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 2))
    p.rule(btc.close == 110, sell("btc", 2))
    bars = [candle(0, 99, 100, 98, 100), candle(1, 100, 110, 100, 110)]
    r = run(p.build(), bars, fee_bps=D(10), slippage_bps=D(20))
    [entry, exit_] = r.fills
    assert (entry.price, entry.fee, entry.realized) == (D("100.2"), D("0.2004"), D("-0.2004"))
    assert (exit_.price, exit_.fee) == (D("109.78"), D("0.219560"))
    assert exit_.realized == D("19.16") - D("0.21956")  # 2 * (109.78 - 100.2) - fee
    account = r.engine.account
    assert account.realized_pnl == D("18.74004")  # both fees included
    assert account.balance == D("10018.74004") == account.equity
    assert account.fees == D("0.41996")


def test_slippage_never_pushes_a_limit_fill_past_its_limit() -> None:
    r = once_at_100(buy("btc", 1, order_type=limit_at(95)), slippage_bps=D(50))
    r.feed([candle(1, 97, 98, 94, 96)])
    assert fills_of(r) == [("BUY", D(1), D(95), end(1))]
    gap = once_at_100(buy("btc", 1, order_type=limit_at(95)), slippage_bps=D(50))
    gap.feed([candle(1, 90, 91, 89, 90)])
    assert fills_of(gap) == [("BUY", D(1), D("90.45"), start(1))]


def test_a_flip_from_long_to_short_is_one_order() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1))
    p.rule(btc.close == 110, sell("btc", 3))
    p.rule(btc.close == 105, buy("btc", 2))
    r = run(p.build(), [candle(0, 100), candle(1, 110), candle(2, 105)])
    assert [(f.side, f.qty, f.realized, f.position) for f in r.fills] == [
        (Side.BUY, D(1), D(0), D(1)),
        (Side.SELL, D(3), D(10), D(-2)),  # closes the long at +10, opens 2 short at 110
        (Side.BUY, D(2), D(10), D(0)),
    ]
    assert r.engine.account.realized_pnl == 20


def test_pnl_to_the_cent_with_averaging_partial_exits_and_marks() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == D("100.10"), buy("btc", 1))
    p.rule(btc.close == D("104.30"), buy("btc", 3))
    p.rule(btc.close == D("110.05"), sell("btc", 2))
    r = run(p.build(), [candle(0, "100.10"), candle(1, "104.30"), candle(2, "110.05")])
    r.feed([candle(3, "108.01")])
    account = r.engine.account
    # avg = (100.10 + 3 * 104.30) / 4 = 103.25; realized = 2 * (110.05 - 103.25) = 13.60
    assert r.engine.positions[0].avg_price == D("103.25")
    assert account.realized_pnl == D("13.60")
    assert account.unrealized_pnl == D("9.52")  # 2 * (108.01 - 103.25)
    assert account.equity == D("10023.12")
    assert account.total_pnl == D("23.12")
    assert account.to_json()["equity"] == "10023.12"


@pytest.mark.parametrize(
    ("side", "stop_loss", "take_profit", "expected"),
    [
        ("BUY", level("AT", 90), level("RR", 2), (D(90), D(120))),
        ("BUY", level("BY", 4), level("PCT", "0.1"), (D(96), D(110))),
        ("BUY", level("PCT", "0.05"), level("AT", 130), (D(95), D(130))),
        ("SELL", level("AT", 110), level("RR", "1.5"), (D(110), D(85))),
        ("SELL", level("BY", 4), level("BY", 6), (D(104), D(94))),
        ("SELL", level("PCT", "0.05"), level("PCT", "0.1"), (D(105), D(90))),
    ],
)
def test_bracket_levels_are_measured_from_the_entry_fill(
    side: str, stop_loss: object, take_profit: object, expected: tuple[Decimal, Decimal]
) -> None:
    r = once_at_100(
        (buy if side == "BUY" else sell)("btc", 1, stop_loss=stop_loss, take_profit=take_profit)
    )
    levels = {o.role: o.stop or o.limit for o in r.engine.open_orders}
    assert (levels[OrderRole.STOP_LOSS], levels[OrderRole.TAKE_PROFIT]) == expected
    assert {o.side for o in r.engine.open_orders} == {Side.SELL if side == "BUY" else Side.BUY}


def test_bracket_levels_use_the_fill_price_after_slippage() -> None:
    r = once_at_100(buy("btc", 1, stop_loss=level("BY", 5)), slippage_bps=D(100))
    assert [o.stop for o in r.engine.open_orders] == [D(96)]  # filled at 101


def test_a_trailing_exit_and_a_bracket_form_one_oco_group() -> None:
    r = once_at_100(
        buy(
            "btc",
            1,
            stop_loss=level("BY", 10),
            take_profit=level("BY", 20),
            trailing_exit=trailing(3),
        )
    )
    assert len({o.group for o in r.engine.open_orders}) == 1
    r.feed([candle(1, 100, 108, 100, 107), candle(2, 107, 107, 104, 104)])  # trail 105 hit
    assert fills_of(r)[1:] == [("SELL", D(1), D(105), end(2))]
    assert r.engine.open_orders == ()
