"""StrategyEngine semantics: order of work, snapshots, aggregates, FOR EACH order, sizing, skips."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qkt.dsl.program import CompiledSizeRisk, SizeNotional, SizePercentOf, SizePosition, TimeInForce
from qkt.engine.config import EngineConfig, FillAt
from qkt.engine.events import LogEvent, LogLevel, SignalEvent, TradeEvent
from qkt.engine.orders import Fill, OrderRole, OrderStatus
from qkt.engine.protocols import MemoryJournal
from qkt.engine.strategy import StrategyEngine
from qkt.engine.values import UNDEFINED, Value
from qkt.market.models import Candle
from tests.engine.builder import (
    D,
    E,
    ProgramBuilder,
    buy,
    candle,
    close,
    close_all,
    closes,
    const,
    level,
    limit_at,
    log,
    run,
    sell,
    wrap,
)


def values_after_each(program_builder: ProgramBuilder, probe: E, bars: list[Candle]) -> list[Value]:
    r = run(program_builder.build())
    seen = []
    for bar in bars:
        r.feed([bar])
        seen.append(r.engine.value_of(probe.node))
    return seen


def test_since_open_resets_on_open_flip_and_close_and_is_undefined_while_flat() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    high = p.agg("MAX", btc.high, "btc")
    p.watch(high)
    p.rule((btc.close == 100) & (p.position("btc") == 0), buy("btc", 1))
    p.rule(btc.close == 120, sell("btc", 2))
    p.rule(btc.close == 90, close("btc"))
    bars = [
        candle(0, 99, 100, 98, 100),  # opens long at the close: nothing since then yet
        candle(1, 100, 105, 99, 103),
        candle(2, 103, 104, 101, 102),
        candle(3, 102, 121, 101, 120),  # flips short at the close: starts again
        candle(4, 118, 119, 117, 118),
        candle(5, 94, 95, 89, 90),  # closed: flat
        candle(6, 90, 130, 90, 125),
    ]
    assert values_after_each(p, high, bars) == [
        UNDEFINED,
        D(105),
        D(105),
        UNDEFINED,
        D(119),
        UNDEFINED,
        UNDEFINED,
    ]


def test_open_buy_and_sell_snapshots() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    at_open = p.snap("px", btc.close, "OPEN", "btc")
    at_buy = p.snap("px", btc.close, "BUY", "btc")
    at_sell = p.snap("px", btc.close, "SELL", "btc")
    p.watch(at_open, at_buy, at_sell)
    p.rule(btc.close.isin(100, 110), buy("btc", 1))
    p.rule(btc.close == 120, sell("btc", 3))
    p.rule(btc.close == 90, close("btc"))
    r = run(p.build())
    seen = []
    for bar in closes([100, 105, 110, 120, 115, 90]):
        r.feed([bar])
        seen.append(tuple(r.engine.value_of(s.node) for s in (at_open, at_buy, at_sell)))
    assert seen == [
        (D(100), D(100), UNDEFINED),
        (D(100), D(100), UNDEFINED),
        (D(100), D(110), UNDEFINED),  # adding to the position is not a new open
        (D(120), D(110), D(120)),  # the flip opens a new (short) position
        (D(120), D(110), D(120)),
        (UNDEFINED, D(110), D(120)),  # cleared when flat
    ]


def test_open_snapshot_of_a_resting_entry_is_the_value_on_its_fill_candle() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    at_open = p.snap("px", btc.close, "OPEN", "btc")
    p.watch(at_open)
    p.rule(btc.close == 100, buy("btc", 1, order_type=limit_at(95)))
    r = run(p.build(), [candle(0, 100), candle(1, 99, 99, 94, 97)])
    assert r.fills[0].price == 95
    assert r.engine.value_of(at_open.node) == D(97)


def test_lag_snapshots_and_window_aggregates() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    lag2 = p.snap("px", btc.close, "T", "btc", lag=2)
    total = p.agg("SUM", btc.close, "btc", window=3)
    mean = p.agg("MEAN", btc.close, "btc", window=3)
    low = p.agg("MIN", btc.low, "btc", window=2)
    p.watch(lag2, total, mean, low)
    r = run(p.build())
    seen = []
    for bar in closes([10, 20, 30, 40, 50]):
        r.feed([bar])
        seen.append(tuple(r.engine.value_of(x.node) for x in (lag2, total, mean, low)))
    assert seen == [
        (UNDEFINED, UNDEFINED, UNDEFINED, UNDEFINED),
        (UNDEFINED, UNDEFINED, UNDEFINED, D(10)),
        (D(10), D(60), D(20), D(10)),  # each candle's low is its open, the previous close
        (D(20), D(90), D(30), D(20)),
        (D(30), D(120), D(40), D(30)),
    ]


def test_for_each_rules_run_in_list_order_and_see_earlier_fills() -> None:
    """`FOR EACH s IN [b2, b1] DO WHEN POSITION.s == 0 THEN BUY s ...` on two aliases of one
    key: one candle is the close of both; b2's rule runs first and b1's sees its fill."""
    p = ProgramBuilder()
    p.stream("b1")
    p.stream("b2")  # the same key: SIM:BTCUSDT:1m
    p.rule(p.position("b2") == 0, buy("b2", 2))
    p.rule(p.position("b1") == 0, buy("b1", 1))
    p.rule((p.position("b1") == 2) & (p.account("equity") == 10_000), log("saw rule 0's fill"))
    r = run(p.build(), [candle(0, 100)])
    assert [(f.qty, f.rule) for f in r.fills] == [(D(2), 0)]
    signals = [e.rule for e in r.events if isinstance(e, SignalEvent)]
    assert signals == [0, 2]
    assert [e.message for e in r.events if isinstance(e, LogEvent)] == ["saw rule 0's fill"]


def test_resting_orders_match_on_the_finest_stream_only() -> None:
    p = ProgramBuilder()
    p.stream("fine", "SIM:BTCUSDT:1m")
    hourly = p.stream("hourly", "SIM:BTCUSDT:1h")
    p.rule(hourly.close == 100, buy("hourly", 1, order_type=limit_at(95)))
    r = run(p.build(), [candle(0, 100, key="SIM:BTCUSDT:1h")])
    r.feed([candle(1, 99, 99, 90, 96, key="SIM:BTCUSDT:1h")])  # touched, but not the finest
    assert r.fills == []
    r.feed([candle(60, 96, 96, 94, 95, key="SIM:BTCUSDT:1m")])
    assert [(f.price, f.ts) for f in r.fills] == [(D(95), candle(60, 0).end_ms)]


def test_close_all_flattens_every_symbol() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    eth = p.stream("eth", "SIM:ETHUSDT:1m")
    p.rule(eth.close == 10, sell("eth", 5))
    p.rule(btc.close == 100, buy("btc", 1))
    p.rule(btc.close == 90, close_all())
    r = run(p.build(), [candle(0, 10, key="SIM:ETHUSDT:1m"), candle(0, 100)])
    assert {str(pos.instrument): pos.qty for pos in r.engine.positions} == {
        "SIM:BTCUSDT": 1,
        "SIM:ETHUSDT": -5,
    }
    r.feed([candle(1, 12, key="SIM:ETHUSDT:1m"), candle(1, 90)])
    assert r.engine.positions == ()
    assert r.engine.account.realized_pnl == D(-10) + D(-10)


@pytest.mark.parametrize(
    ("sizing", "expected"),
    [
        (SizeNotional(wrap(1000)), D(10)),  # 1000 USD at 100
        (SizePercentOf(wrap("0.02"), "EQUITY"), D(2)),  # a fraction: 2 % of 10000 at 100
        (CompiledSizeRisk(wrap("0.01"), cash=False), D(20)),  # 1 % of equity / stop distance 5
        (CompiledSizeRisk(wrap(50), cash=True), D(10)),  # $50 / stop distance 5
    ],
)
def test_sizing_modes(sizing: object, expected: Decimal) -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", sizing=sizing, stop_loss=level("BY", 5)))
    r = run(p.build(), [candle(0, 100)])
    assert [f.qty for f in r.fills] == [expected]


def test_percent_of_equity_and_of_balance_differ_by_unrealized_pnl() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 10))
    p.rule(btc.close == 110, buy("btc", sizing=SizePercentOf(wrap("0.1"), "EQUITY")))
    p.rule(btc.close == 110, buy("btc", sizing=SizePercentOf(wrap("0.1"), "BALANCE")))
    p.rule(btc.close == 120, sell("btc", sizing=SizePosition("btc")))
    r = run(p.build(), closes([100, 110, 120]))
    # At 110 equity is 10100 (balance 10000 + 100 unrealized); quantities round down to 1e-8.
    assert [f.qty for f in r.fills] == [
        D(10),
        D("9.18181818"),  # 1010 / 110
        D("9.09090909"),  # 1000 / 110
        D("28.27272727"),  # the whole position
    ]
    assert r.engine.positions == ()


def test_notional_sizing_of_a_limit_order_uses_its_limit_price() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", sizing=SizeNotional(wrap(1000)), order_type=limit_at(80)))
    r = run(p.build(), [candle(0, 100)])
    assert [o.qty for o in r.engine.open_orders] == [D("12.5")]


def test_zero_negative_and_undefined_sizes_are_skipped_and_logged_once() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(const(True), buy("btc", btc.close - 100))
    r = run(p.build(), closes([100, 99, 100, "101.5"]))
    assert [f.qty for f in r.fills] == [D("1.5")]
    assert r.warnings == ["rule 0: the size is 0, not above zero; skipped (logged once)"]

    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(const(True), buy("btc", p.sma(btc.close, 3) / 100))
    r = run(p.build(), closes([100, 100, 100, 100]))
    assert [f.qty for f in r.fills] == [D(1), D(1)]
    assert r.warnings == ["rule 0: the size is undefined; skipped (logged once)"]


def test_an_unwarm_atr_stop_distance_skips_the_action_once_logged() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    atr = p.atr(btc, 3)
    p.rule(p.position("btc") == 0, buy("btc", 1, stop_loss=level("BY", atr * 2)))
    bars = [candle(i, 100, 102, 98, 100) for i in range(5)]  # every true range is 4
    r = run(p.build(), bars)
    # ATR(3) is warm after 4 candles: the first three entries are skipped, with one warning.
    assert [f.ts for f in r.fills] == [bars[3].end_ms]
    assert r.warnings == [
        "rule 0: the stop loss is undefined (an indicator not warm yet?); skipped (logged once)"
    ]
    [stop] = r.engine.open_orders
    assert stop.stop == D(92)  # 100 - 2 * 4


def test_a_rule_whose_condition_is_undefined_does_not_fire() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close > p.ema(btc.close, 3), log("above"))
    r = run(p.build(), closes([100, 101, 102, 101]))
    # EMA(3) is warm from the third close (101); 102 is above it, then 101 < 101.5 is not.
    assert [e.ts for e in r.events if isinstance(e, SignalEvent)] == [candle(2, 0).end_ms]
    assert r.warnings == ["above"]
    assert r.engine.warm


def test_each_candle_closes_once_and_unknown_keys_are_refused() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close > 0, buy("btc", 1))
    r = run(p.build(), [candle(0, 100), candle(1, 101)])
    assert r.feed([candle(1, 101), candle(0, 100)]) == []
    assert len(r.fills) == 2
    assert r.engine.last_candle_ms == {candle(1, 0).key: candle(1, 0).open_ms}
    with pytest.raises(ValueError, match="SIM:ETHUSDT:1m is not a stream"):
        r.engine.on_candle(candle(2, 5, key="SIM:ETHUSDT:1m"))


def test_warm_up_advances_indicators_and_crosses_without_trading() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    fast, slow = p.sma(btc.close, 2), p.sma(btc.close, 3)
    p.rule(p.crosses(fast, "ABOVE", slow), buy("btc", 1))
    r = run(p.build())
    for bar in closes([100, 99, 98, 97]):
        assert r.engine.warm_up(bar) == []
    assert r.engine.warm and r.engine.trade_count == 0
    r.feed(closes([110], start=4))  # CROSSES already has its previous state: it fires now
    assert [f.price for f in r.fills] == [D(110)]


def test_value_of_refuses_crosses() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    cross = p.crosses(btc.close, "ABOVE", 1)
    p.rule(cross, log("x"))
    r = run(p.build())
    with pytest.raises(ValueError, match="CROSSES"):
        r.engine.value_of(cross.node)
    assert r.engine.value_of((btc.close > 1).node) is UNDEFINED


def test_events_render_money_as_exact_strings_and_times_as_epoch_ms() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == D("100.10"), buy("btc", "0.5"))
    r = run(p.build(), [candle(0, "100.10")], fee_bps=D(7))
    trade = next(e for e in r.events if e.type == "trade").to_json()
    assert trade["price"] == "100.1" and trade["qty"] == "0.5" and trade["fee"] == "0.035035"
    assert trade["ts"] == candle(0, 0).end_ms and isinstance(trade["ts"], int)
    signal = next(e for e in r.events if e.type == "signal").to_json()
    assert signal == {
        "type": "signal",
        "ts": candle(0, 0).end_ms,
        "candle_ms": candle(0, 0).open_ms,
        "rule": 0,
        "text": "rule 0",
        "stream": "btc",
        "line": 10,
    }
    assert r.engine.status()["balance"] == "9999.964965"


def test_a_market_that_stood_still_has_its_sma_equal_to_the_close() -> None:
    """TA-Lib's float SMA of twenty 100.1 is 100.09999999999997; as a 16-digit number it is
    100.1, so neither `close > SMA` nor `close < SMA` holds."""
    p = ProgramBuilder()
    btc = p.stream("btc")
    sma = p.sma(btc.close, 20)
    p.rule(btc.close > sma, log("above"))
    p.rule(btc.close < sma, log("below"))
    p.watch(sma)
    r = run(p.build(), [candle(i, "100.1") for i in range(25)])
    assert r.engine.value_of(sma.node) == D("100.1")
    assert r.warnings == []


class FailingJournal(MemoryJournal):
    """A journal whose disk is full."""

    def record_fill(self, fill: Fill) -> None:
        raise OSError("disk full")


def test_fills_are_journaled_before_they_are_reported() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1, stop_loss=level("BY", 5)))
    journal = MemoryJournal()
    engine = StrategyEngine(p.build(), EngineConfig(), journal)
    events = engine.on_candle(candle(0, 100))
    assert journal.fills == [e.fill for e in events if isinstance(e, TradeEvent)]
    assert [s.rule for s in journal.signals] == [0]
    assert [(o.role, o.status) for o in journal.orders] == [
        (OrderRole.ENTRY, OrderStatus.FILLED),
        (OrderRole.STOP_LOSS, OrderStatus.OPEN),
    ]
    # A journal that cannot record stops the candle: no fill is ever reported unrecorded.
    failing = StrategyEngine(p.build(), EngineConfig(), FailingJournal())
    with pytest.raises(OSError, match="disk full"):
        failing.on_candle(candle(0, 100))


def test_account_position_and_average_price_values() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 2))
    p.rule(btc.close == 104, sell("btc", 1))
    r = run(p.build(), closes([100, 104, 103]), fee_bps=D(10))
    value = r.engine.value_of
    # Fees: 0.2 + 0.104; realized = 4 - 0.304; unrealized = 1 * (103 - 100).
    assert value(p.account("realized_pnl").node) == D("3.696")
    assert value(p.account("balance").node) == D("10003.696")
    assert value(p.account("unrealized_pnl").node) == D(3)
    assert value(p.account("equity").node) == D("10006.696")
    assert value(p.account("total_pnl").node) == D("6.696")
    assert value(p.position("btc").node) == D(1)
    assert value(p.avg_price("btc").node) == D(100)


def test_ioc_at_the_next_open_fills_or_cancels_there() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1, order_type=limit_at(101), tif=TimeInForce.IOC))
    p.rule(btc.close == 100, buy("btc", 1, order_type=limit_at(99), tif=TimeInForce.FOK))
    r = run(p.build(), [candle(0, 100)], fill_at=FillAt.NEXT_OPEN)
    assert r.fills == [] and len(r.engine.open_orders) == 2
    r.feed([candle(1, "100.5", 101, 95, 96)])  # the FOK's limit is touched later: too late
    assert [(f.price, f.ts) for f in r.fills] == [(D("100.5"), candle(1, 0).open_ms)]
    assert r.engine.open_orders == ()
    assert r.journal.orders[-1].status is OrderStatus.CANCELLED


def test_log_actions_are_info_lines() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close > 0, log("tick"))
    r = run(p.build(), [candle(0, 1)])
    [line] = [e for e in r.events if isinstance(e, LogEvent)]
    assert (line.level, line.message, line.rule, line.ts) == (
        LogLevel.INFO,
        "tick",
        0,
        candle(0, 1).end_ms,
    )


def test_config_refuses_negative_costs_and_floats() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        EngineConfig(fee_bps=D(-1))
    with pytest.raises(ValueError, match="balance must be a finite Decimal"):
        EngineConfig(balance=10_000.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="qty_step must be positive"):
        EngineConfig(qty_step=D(0))
