"""Expression values: undefined spreads everywhere, 16-digit half-even decimals, x / 0, BETWEEN,
IN, lazy CASE, CROSSES state."""

from __future__ import annotations

from decimal import Decimal

from qkt.dsl.program import CompiledExpr
from qkt.engine.evaluator import Evaluator
from qkt.engine.events import EventBuffer, LogEvent
from qkt.engine.plan import build_plan
from qkt.engine.portfolio import Portfolio
from qkt.engine.slots import SlotTable
from qkt.engine.values import UNDEFINED, Value
from qkt.market.models import Candle
from tests.engine.builder import D, E, ProgramBuilder, buy, candle, const, log, run

UNDEF = E(ProgramBuilder().stream("nothing").close.node)  # a stream that never had a candle


class Harness:
    """An evaluator over a one-stream program whose rules hold the expressions under test."""

    def __init__(self, *exprs: E) -> None:
        p = ProgramBuilder()
        p.stream("btc")
        p.stream("nothing", "SIM:ETHUSDT:1m")
        for expr in exprs:
            p.rule(expr, log("x"), stream="btc")
        self.plan = build_plan(p.build())
        self.candles: dict[str, Candle] = {}
        self.events = EventBuffer()
        self.evaluator = Evaluator(
            self.plan, SlotTable(self.plan), self.candles, Portfolio(D(10_000)), self.events
        )

    def __call__(self, expr: E | CompiledExpr) -> Value:
        return self.evaluator.value(expr.node if isinstance(expr, E) else expr)


def test_undefined_spreads_through_every_operator() -> None:
    t, f = const(True), const(False)
    h = Harness()
    assert h(UNDEF) is UNDEFINED
    for expr in (
        f & UNDEF,  # no short-circuit: FALSE AND undefined is undefined
        UNDEF & f,
        t | UNDEF,  # and TRUE OR undefined too
        ~UNDEF,
        -UNDEF,
        UNDEF + 1,
        const(1) / UNDEF,
        UNDEF > 1,
        UNDEF == UNDEF,
        UNDEF.between(0, 2),
        const(1).between(UNDEF, 2),
        const(1).isin(1, UNDEF),
        UNDEF.isin(1),
    ):
        assert h(expr) is UNDEFINED, expr
    assert h(f & t) is False and h(f | t) is True and h(~f) is True


def test_arithmetic_has_16_significant_digits_half_even() -> None:
    h = Harness()
    assert h(const(1) / 3) == Decimal("0.3333333333333333")
    assert h(const(2) / 3) == Decimal("0.6666666666666667")
    assert h(const("0.12345678901234565") * 1) == Decimal("0.1234567890123456")  # to even
    assert h(const("0.12345678901234575") * 1) == Decimal("0.1234567890123458")
    assert h(const("0.1") + "0.2") == Decimal("0.3")  # exact decimals, not binary floats
    assert h(-(const(7) - 10)) == 3


def test_division_by_zero_is_undefined_and_logged_once() -> None:
    h = Harness()
    h.evaluator.rule = 4
    assert h(const(1) / 0) is UNDEFINED
    assert h(const(2) / (const(1) - 1)) is UNDEFINED
    events = h.events.drain()
    assert [(e.level.value, e.rule, e.message) for e in events if isinstance(e, LogEvent)] == [
        ("WARNING", 4, "rule 4: division by zero: the value is undefined (logged once)")
    ]
    h.evaluator.rule = 5  # another rule gets its own warning
    h(const(1) / 0)
    assert len(h.events.drain()) == 1


def test_comparisons_between_and_in() -> None:
    h = Harness()
    assert h(const(2).between(2, 3)) is True and h(const(3).between(2, 3)) is True
    assert h(const("3.01").between(2, 3)) is False
    assert h(const(2).isin(1, "2.00", 5)) is True  # numeric equality
    assert h(const(4).isin(1, 2)) is False
    assert h(const(True) == const(True)) is True
    assert h(const(True) > const(False)) is UNDEFINED  # booleans do not order
    assert h(const(1) == const(True)) is UNDEFINED


def test_case_takes_the_first_true_branch_and_is_lazy() -> None:
    p = ProgramBuilder()
    cross = p.crosses(p.stream("btc").close, "ABOVE", 100)
    h = Harness(cross)
    pick = p.case([(UNDEF > 1, 1), (const(False), 2), (const(True), 3), (const(True), 4)], 9)
    assert h(pick) == 3  # an undefined condition is not true
    assert h(p.case([(const(False), 1)], UNDEF)) is UNDEFINED
    lazy = p.case([(const(False), cross.node)], 0)  # type: ignore[list-item]
    h.candles["btc"] = candle(0, 99)
    h(lazy)
    h(lazy)
    assert (
        h.evaluator.value(cross.node) is UNDEFINED
    )  # its first evaluation ever: not stepped before


def test_crosses_state_with_undefined_operands() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    above = p.crosses(btc.close, "ABOVE", btc.open)
    below = p.crosses(btc.close, "BELOW", btc.open)
    h = Harness(above, below)
    seen = []
    bars: list[Candle | None] = [
        None,  # undefined operands: undefined, the state untouched
        candle(0, 100, None, None, 99),  # first defined evaluation: undefined
        candle(1, 100, None, None, 101),  # crossed above
        candle(2, 100, None, None, 102),  # still above: no cross
        None,  # undefined again: leaves "above" in place
        candle(3, 100, None, None, 98),  # crossed below
        candle(4, 100, None, None, 100),  # equal is not above: stays below
        candle(5, 100, None, None, 101),  # above again
    ]
    for bar in bars:
        h.candles.clear()
        if bar is not None:
            h.candles["btc"] = bar
        seen.append((h(above), h(below)))
    assert seen == [
        (UNDEFINED, UNDEFINED),
        (UNDEFINED, UNDEFINED),
        (True, False),
        (False, False),
        (UNDEFINED, UNDEFINED),
        (False, True),
        (False, False),
        (True, False),
    ]


def test_division_by_zero_in_a_rule_is_skipped_and_the_engine_keeps_running() -> None:
    p = ProgramBuilder()
    btc = p.stream("btc")
    p.rule((const(1) / (btc.close - 100)) > 0, buy("btc", 1))
    r = run(p.build(), [candle(i, price) for i, price in enumerate([100, 100, 101, 100])])
    assert [f.price for f in r.fills] == [D(101)]
    assert r.warnings == ["rule 0: division by zero: the value is undefined (logged once)"]
