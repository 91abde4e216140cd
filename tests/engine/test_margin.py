"""Buying power on the paper market: spot pays in full, linear posts margin and is liquidated at
the documented price, and the balance never goes below zero whatever the orders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qkt.engine.config import EngineConfig
from qkt.engine.events import LogEvent, OrderRejectedEvent
from qkt.engine.margin import (
    MarginError,
    MarginRules,
    MarketKind,
    liquidation_price,
    margin_from_flags,
    parse_leverage,
    parse_margin,
)
from qkt.engine.orders import Instrument, OrderRole
from qkt.engine.strategy import StrategyEngine
from tests.engine.builder import D, ProgramBuilder, buy, candle, close, level, limit_at, run, sell

LINEAR = "BYBIT_LINEAR:BTCUSDT:1m"
ON = MarginRules()


def rejections(events: list[object]) -> list[str]:
    return [e.reason for e in events if isinstance(e, OrderRejectedEvent)]


def test_a_buy_the_balance_cannot_pay_is_rejected_and_the_balance_stays() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 60_000, buy("btc", 1))
    r = run(p.build(), [candle(0, 60_000)], balance=D(100), fee_bps=D(10), margin=ON)
    assert r.fills == []
    assert rejections(r.events) == [
        "insufficient balance: needs 60060 (price x qty + fee), available 100"
    ]
    assert r.engine.account.balance == D(100)
    assert r.journal.orders[-1].status.value == "REJECTED"


def test_a_buy_that_fits_exactly_fills_and_the_next_one_does_not() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close > 0, buy("btc", 1))
    r = run(p.build(), [candle(0, 100), candle(1, 100)], balance=D(100), margin=ON)
    assert len(r.fills) == 1
    assert rejections(r.events) == [
        "insufficient balance: needs 100 (price x qty + fee), available 0"
    ]


def test_a_spot_sell_needs_the_position_unless_shorts_are_allowed() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1))
    p.rule(btc.close == 101, sell("btc", 3))
    bars = [candle(0, 100), candle(1, 100, None, None, 101)]
    spot = run(p.build(), bars, margin=ON)
    assert [f.side.value for f in spot.fills] == ["BUY"]
    assert rejections(spot.events) == [
        "a spot sell needs the position: 3 BTCUSDT to sell, 1 held (shorts are off)"
    ]
    shorts = run(p.build(), bars, margin=MarginRules(allow_shorts=True))
    assert [(f.side.value, f.position) for f in shorts.fills] == [("BUY", D(1)), ("SELL", D(-2))]


def test_a_resting_limit_that_no_longer_fits_when_it_fills_is_rejected_then() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 5, order_type=limit_at(95)))  # 475 of 500: fits
    p.rule(btc.close == 101, buy("btc", 1))  # spends 101 before the limit is reached
    bars = [candle(0, 100), candle(1, 100, None, None, 101), candle(2, 101, 101, 94, 96)]
    r = run(p.build(), bars, balance=D(500), margin=ON)
    assert [(f.qty, f.price) for f in r.fills] == [(D(1), D(101))]
    assert rejections(r.events) == [
        "insufficient balance: needs 475 (price x qty + fee), available 399"
    ]
    assert r.engine.open_orders == ()


def test_exits_are_never_refused() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 100, buy("btc", 1))
    p.rule(btc.close == 50, close("btc"))
    r = run(p.build(), [candle(0, 100), candle(1, 100, None, None, 50)], balance=D(100), margin=ON)
    assert [(f.role, f.price) for f in r.fills] == [
        (OrderRole.ENTRY, D(100)),
        (OrderRole.CLOSE, D(50)),
    ]
    assert r.engine.account.balance == D(50)


def test_margin_off_keeps_0_13_s_unchecked_fills() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule(btc.close == 60_000, buy("btc", 1))
    r = run(p.build(), [candle(0, 60_000)], balance=D(100), fee_bps=D(10),
            margin=MarginRules(enabled=False))  # fmt: skip
    assert len(r.fills) == 1 and r.engine.account.balance == D(40)  # 100 - fee 60
    assert r.engine.available < 0


# -- linear ---------------------------------------------------------------------------------


def test_the_documented_liquidation_prices() -> None:
    rules = MarginRules(leverage=D(5))
    linear = Instrument("BYBIT_LINEAR", "BTCUSDT")
    assert rules.kind_of(linear) is MarketKind.LINEAR
    assert liquidation_price(rules, linear, D(1), D(60_000)) == D(48_300)  # 60000 * 0.805
    assert liquidation_price(rules, linear, D(-1), D(60_000)) == D(71_700)  # 60000 * 1.195
    spot = Instrument("SIM", "BTCUSDT")
    assert liquidation_price(rules, spot, D(1), D(60_000)) is None  # a spot long cannot be
    assert liquidation_price(rules, spot, D(-1), D(60_000)) == D(119_700)  # 1x: 60000 * 1.995
    assert liquidation_price(MarginRules(enabled=False), linear, D(1), D(60_000)) is None


def linear_long(leverage: int = 5, **options: object) -> ProgramBuilder:
    p = ProgramBuilder()
    btc = p.stream("btc", LINEAR)
    p.rule(btc.close == 60_000, buy("btc", 1, **options))
    return p


def test_leverage_5_posts_a_fifth_and_is_liquidated_at_48300() -> None:
    rules = MarginRules(leverage=D(5))
    r = run(linear_long().build(), [candle(0, 60_000, key=LINEAR)], balance=D(12_000), margin=rules)
    assert len(r.fills) == 1
    assert r.engine.available == 0  # 12,000 of margin: all of it
    r.feed([candle(1, 60_000, 60_000, 48_301, 50_000, key=LINEAR)])  # one above: still open
    assert r.engine.positions != ()
    r.feed([candle(2, 50_000, 50_500, 48_300, 49_000, key=LINEAR)])
    liquidation = r.fills[-1]
    assert (liquidation.role, liquidation.side.value, liquidation.price) == (
        OrderRole.LIQUIDATION,
        "SELL",
        D(48_300),
    )
    assert liquidation.ts == candle(2, 1, key=LINEAR).end_ms
    assert r.engine.positions == ()
    assert r.engine.account.balance == D(300)  # the maintenance margin: 60000 * 0.005
    assert any(isinstance(e, LogEvent) and "liquidated at 48300" in e.message for e in r.events)


def test_a_gap_through_the_liquidation_price_still_closes_at_it() -> None:
    rules = MarginRules(leverage=D(5))
    r = run(linear_long().build(), [candle(0, 60_000, key=LINEAR)], balance=D(12_000), margin=rules)
    r.feed([candle(1, 30_000, 31_000, 29_000, 30_000, key=LINEAR)])
    assert r.fills[-1].price == D(48_300) and r.fills[-1].ts == candle(1, 1, key=LINEAR).open_ms
    assert r.engine.account.balance == D(300)


def test_a_stop_above_the_liquidation_price_fills_first_and_one_below_does_not() -> None:
    rules = MarginRules(leverage=D(5))
    bars = [candle(0, 60_000, key=LINEAR), candle(1, 60_000, 60_000, 40_000, 45_000, key=LINEAR)]
    above = run(
        linear_long(stop_loss=level("AT", 50_000)).build(), bars, balance=D(12_000), margin=rules
    )
    assert [(f.role, f.price) for f in above.fills[1:]] == [(OrderRole.STOP_LOSS, D(50_000))]
    below = run(
        linear_long(stop_loss=level("AT", 45_000)).build(), bars, balance=D(12_000), margin=rules
    )
    assert [(f.role, f.price) for f in below.fills[1:]] == [(OrderRole.LIQUIDATION, D(48_300))]


def test_a_liquidation_fee_never_leaves_a_debt() -> None:
    # Opening costs 12,000 of margin and a 450 fee (75 bps); at 48,300 the loss is 11,700 and
    # the fee would be 362.25, more than the 300 left: the fee takes what is there, no more.
    r = run(linear_long().build(), [candle(0, 60_000, key=LINEAR)], balance=D(12_450),
            fee_bps=D(75), margin=MarginRules(leverage=D(5)))  # fmt: skip
    assert r.engine.available == 0
    r.feed([candle(1, 60_000, 60_000, 48_000, 48_500, key=LINEAR)])
    assert (r.fills[-1].role, r.fills[-1].fee) == (OrderRole.LIQUIDATION, D(300))
    assert r.engine.account.balance == 0


def test_a_linear_order_needs_its_initial_margin_and_fee() -> None:
    r = run(linear_long().build(), [candle(0, 60_000, key=LINEAR)], balance=D(11_999),
            margin=MarginRules(leverage=D(5)))  # fmt: skip
    assert rejections(r.events) == [
        "insufficient balance: needs 12000 (price x qty / leverage 5 + fee), available 11999"
    ]


def test_a_linear_strategy_may_short_without_allowing_shorts() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc", LINEAR)
    p.rule(btc.close == 60_000, sell("btc", 1))
    r = run(p.build(), [candle(0, 60_000, key=LINEAR)], balance=D(12_000),
            margin=MarginRules(leverage=D(5)))  # fmt: skip
    assert [f.position for f in r.fills] == [D(-1)]
    r.feed([candle(1, 60_000, 71_700, 60_000, 70_000, key=LINEAR)])
    assert r.fills[-1].price == D(71_700) and r.engine.account.balance == D(300)


# -- the property: the balance never goes below zero ----------------------------------------

SIZES = ("0.5", "1", "3", "10", "40")
order_step = st.tuples(
    st.integers(0, 2 * len(SIZES)),  # which rule fires: buy size i, sell size i, or close
    st.integers(-15, 15),  # the close's move, in percent
    st.integers(0, 10),  # wicks, in percent
)


def random_orders_program() -> ProgramBuilder:
    """Rule k fires when the candle's volume is k: BUY or SELL one of SIZES, or CLOSE."""
    p = ProgramBuilder()
    btc = p.stream("btc")
    for i, size in enumerate(SIZES):
        p.rule(btc.field("volume") == i, buy("btc", D(size)))
        p.rule(btc.field("volume") == len(SIZES) + i, sell("btc", D(size)))
    p.rule(btc.field("volume") == 2 * len(SIZES), close("btc"))
    return p


PROGRAM = random_orders_program().build()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(order_step, min_size=5, max_size=80),
    balance=st.sampled_from([D(50), D(500), D(5_000)]),
    fee=st.sampled_from([D(0), D(10), D(75)]),
    market=st.sampled_from(["spot", "spot with shorts", "linear 1x", "linear 5x", "linear 50x"]),
    scale=st.sampled_from([1, 4]),  # 4: moves up to 60 % a candle, liquidations and gaps
)
def test_the_balance_never_goes_below_zero_whatever_the_orders(
    steps: list[tuple[int, int, int]], balance: Decimal, fee: Decimal, market: str, scale: int
) -> None:
    shorts = market != "spot"
    kind = MarketKind.LINEAR if market.startswith("linear") else MarketKind.SPOT
    leverage = (
        D(market.removeprefix("linear ").removesuffix("x")) if kind is MarketKind.LINEAR else D(1)
    )
    rules = MarginRules(allow_shorts=shorts, market=kind, leverage=leverage)
    engine = StrategyEngine(PROGRAM, EngineConfig(balance=balance, fee_bps=fee, margin=rules))
    price = D(100)
    for i, (which, move, wick) in enumerate(steps):
        new = max(D(1), price * (100 + move * scale) / 100)
        high, low = max(price, new) * (100 + wick) / 100, min(price, new) * (100 - wick) / 100
        engine.on_candle(candle(i, price, high, max(low, D("0.5")), new, volume=which))
        price = new
        account = engine.account
        assert account.balance >= 0
        assert engine.available >= 0
        if market == "spot":
            assert all(p.qty > 0 for p in engine.positions)


# -- parsing the flags ----------------------------------------------------------------------


def test_leverage_and_margin_flags_parse_or_say_what_is_wrong() -> None:
    assert parse_leverage("5") == D(5) and parse_leverage("2.5x") == D("2.5")
    assert parse_margin("off") is False and parse_margin("ON") is True
    for bad, message in [
        ("0", "--leverage: 0 must be from 1 to 100"),
        ("-3", "--leverage: -3 must be from 1 to 100"),
        ("1000", "--leverage: 1000 must be from 1 to 100"),
        ("five", "--leverage: 'five' is not a number"),
    ]:
        with pytest.raises(MarginError, match=message):
            parse_leverage(bad)
    with pytest.raises(MarginError, match="--margin: 'maybe' must be `on` or `off`"):
        parse_margin("maybe")
    assert margin_from_flags() == MarginRules()
    assert margin_from_flags("5", "off") == MarginRules(enabled=False, leverage=D(5))
    assert margin_from_flags(None, None, MarginRules(leverage=D(3))).leverage == D(3)
