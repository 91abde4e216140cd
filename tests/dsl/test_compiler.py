"""What the compiler resolves for the engine (program.py's docstring), checked on the IR itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from qkt.dsl import CompileError, compile_source
from qkt.dsl import program as ir
from qkt.market.models import CandleKey, Timeframe

HEADER = "STRATEGY s VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m, eth = BYBIT:ETHUSDT EVERY 4h\n"


def compile_rules(rules: str, lets: str = "", defaults: str = "") -> ir.Program:
    text = HEADER.replace("SYMBOLS", f"{defaults}\nSYMBOLS") + lets + "\nRULES\n" + rules
    return compile_source(text, "t.qkt")


def walk(node: Any) -> Iterator[Any]:
    """Every IR node under `node` (dataclasses and tuples), depth first."""
    yield node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for field in dataclasses.fields(node):
            yield from walk(getattr(node, field.name))
    elif isinstance(node, tuple):
        for item in node:
            yield from walk(item)


def slots(program: ir.Program) -> list[int]:
    return [node.slot for node in walk(program.rules) if hasattr(node, "slot")]


def test_a_small_program_compiles_to_exactly_this_ir() -> None:
    program = compile_source(
        "STRATEGY tiny VERSION 3\n"
        "SYMBOLS btc = SIM:BTCUSDT EVERY 15m\n"
        "LET fast = EMA(btc.price, 12)\n"
        "RULES WHEN fast CROSSES ABOVE btc.close THEN BUY btc SIZING 0.5\n",
        "tiny.qkt",
    )
    key = CandleKey("SIM", "BTCUSDT", Timeframe.parse("15m"))
    ema = ir.IndicatorCall(0, "EMA", ir.FieldRef("btc", "close"), 12, "btc")
    assert program == ir.Program(
        name="tiny",
        version=3,
        path="tiny.qkt",
        streams=(ir.StreamDecl("btc", key, ir.Span(2, 9)),),
        rules=(
            ir.CompiledRule(
                index=0,
                stream="btc",
                condition=ir.CompiledCrosses(1, "ABOVE", ema, ir.FieldRef("btc", "close")),
                action=ir.OrderAction(
                    side="BUY",
                    stream="btc",
                    sizing=ir.SizeQuantity(ir.Const(Decimal("0.5"))),
                    order_type=ir.MarketOrder(),
                    tif=ir.TimeInForce.GTC,
                    bracket=None,
                    oco=None,
                    trailing_exit=None,
                ),
                span=ir.Span(4, 7),
                text="WHEN fast CROSSES ABOVE btc.close THEN BUY btc SIZING 0.5",
            ),
        ),
        slot_count=2,
    )
    assert program.keys == (key,)


def test_one_slot_per_distinct_indicator_call_and_per_other_stateful_site() -> None:
    program = compile_rules(
        "WHEN fast > slow AND fast@T-2 < fast THEN BUY btc SIZING 1\n"
        "FOR EACH s IN [btc, eth] DO WHEN EMA(s.close, 5) CROSSES ABOVE fast THEN CLOSE s\n"
        "WHEN MAX(btc.high) SINCE T-3 > 0 THEN CLOSE_ALL\n",
        lets="LET fast = EMA(btc.close, 12), slow = SMA(fast, 3)",
    )
    found = slots(program)
    assert sorted(set(found)) == list(range(program.slot_count))
    # Indicators: EMA(btc.close, 12) once however often `fast` is used, SMA(fast, 3), and
    # EMA(btc.close, 5) and EMA(eth.close, 5) = 4. Each other stateful site has its own: fast@T-2,
    # the two CROSSES, MAX = 4.
    assert program.slot_count == 4 + 4
    indicators = {n.slot: n for n in walk(program.rules) if isinstance(n, ir.IndicatorCall)}
    assert len(indicators) == 4
    fast = [n for n in walk(program.rules) if isinstance(n, ir.IndicatorCall) and n.period == 12]
    assert len({n.slot for n in fast}) == 1 and len(fast) > 1


def test_for_each_expands_in_place_in_list_order_with_the_variable_resolved() -> None:
    program = compile_rules(
        "WHEN btc.close > 0 THEN CLOSE btc\n"
        "FOR EACH x IN [eth, btc] DO WHEN POSITION.x > 0 THEN SELL x SIZING POSITION.x\n"
        "WHEN btc.close < 0 THEN CLOSE_ALL\n"
    )
    assert [rule.index for rule in program.rules] == [0, 1, 2, 3]
    assert [rule.stream for rule in program.rules] == ["btc", "eth", "btc", "btc"]
    eth_rule = program.rules[1]
    assert eth_rule.condition == ir.Compare(">", ir.PositionRef("eth"), ir.Const(Decimal(0)))
    assert isinstance(eth_rule.action, ir.OrderAction)
    assert eth_rule.action.sizing == ir.SizePosition("eth")
    assert program.rules[1].span == program.rules[2].span == ir.Span(7, 1)
    assert program.rules[1].text.startswith("FOR EACH x IN [eth, btc] DO WHEN")


def test_close_all_and_log_belong_to_the_first_declared_stream() -> None:
    program = compile_rules(
        "WHEN eth.close > 1 THEN CLOSE_ALL\nWHEN eth.close > 2 THEN LOG 'x'\n"
        "WHEN btc.close > 1 THEN CLOSE eth\n"
    )
    assert [rule.stream for rule in program.rules] == ["btc", "btc", "eth"]


def test_defaults_merge_into_each_action_and_symbol_is_the_actions_stream() -> None:
    program = compile_rules(
        "WHEN eth.close > 1 THEN BUY eth\n"
        "WHEN btc.close > 1 THEN SELL btc TIF IOC BRACKET { TAKE PROFIT AT 100 }\n",
        defaults="DEFAULTS { SIZING = 2 STOP_LOSS = BY ATR(SYMBOL, 14) * 2 TAKE_PROFIT = RR 3"
        " TIF = DAY ORDER_TYPE = LIMIT AT 5 TRAILING = TRAILING BY 7 }",
    )
    first, second = (rule.action for rule in program.rules)
    assert isinstance(first, ir.OrderAction) and isinstance(second, ir.OrderAction)
    assert first.sizing == ir.SizeQuantity(ir.Const(Decimal(2)))
    assert first.tif is ir.TimeInForce.DAY and second.tif is ir.TimeInForce.IOC
    assert first.order_type == ir.LimitOrder(ir.Const(Decimal(5)))
    assert first.trailing_exit == ir.TrailingOrder(ir.Const(Decimal(7)), percent=False)
    assert first.bracket is not None and second.bracket is not None
    stop = first.bracket.stop_loss
    assert stop is not None and isinstance(stop.value, ir.Arith)
    assert stop.kind == "BY"
    assert stop.value.left == ir.IndicatorCall(0, "ATR", ir.CandleRef("eth"), 14, "eth")
    # An inline child wins over the DEFAULTS one; the other child still comes from DEFAULTS.
    assert second.bracket.take_profit == ir.ExitLevel("AT", ir.Const(Decimal(100)))
    second_stop = second.bracket.stop_loss
    assert second_stop is not None and isinstance(second_stop.value, ir.Arith)
    assert second_stop.value.left == ir.IndicatorCall(1, "ATR", ir.CandleRef("btc"), 14, "btc")


def test_a_defaults_stop_loss_alone_still_protects_every_entry_but_not_an_oco() -> None:
    program = compile_rules(
        "WHEN btc.close > 1 THEN BUY btc SIZING 1\n"
        "WHEN btc.close > 1 THEN SELL btc SIZING 1 OCO { STOP AT 1 }\n",
        defaults="DEFAULTS { STOP_LOSS = PCT 0.02 TRAILING = TRAILING PCT 0.01 }",
    )
    entry, oco = (rule.action for rule in program.rules)
    assert isinstance(entry, ir.OrderAction) and isinstance(oco, ir.OrderAction)
    assert entry.bracket == ir.Bracket(ir.ExitLevel("PCT", ir.Const(Decimal("0.02"))), None)
    assert oco.bracket is None and oco.trailing_exit is None
    assert oco.oco == ir.Oco(stop=ir.Const(Decimal(1)), limit=None)


def test_lets_expand_in_actions_and_a_period_may_be_a_let_chain() -> None:
    program = compile_rules(
        "WHEN btc.close > 0 THEN BUY btc SIZING qty ORDER_TYPE = STOP AT level LIMIT AT level",
        lets="LET qty = 0.1, level = RSI(btc.open, p), p = q, q = 9",
    )
    action = program.rules[0].action
    assert isinstance(action, ir.OrderAction)
    assert action.sizing == ir.SizeQuantity(ir.Const(Decimal("0.1")))
    assert action.order_type == ir.StopOrder(
        ir.IndicatorCall(0, "RSI", ir.FieldRef("btc", "open"), 9, "btc"),
        ir.IndicatorCall(0, "RSI", ir.FieldRef("btc", "open"), 9, "btc"),  # one call, one slot
    )


def test_nested_indicators_are_rooted_at_the_stream_under_them() -> None:
    program = compile_rules("WHEN EMA(RSI(eth.close, 14), 5) > 50 THEN CLOSE btc")
    condition = program.rules[0].condition
    assert isinstance(condition, ir.Compare) and isinstance(condition.left, ir.IndicatorCall)
    assert condition.left.root == "eth"
    assert condition.left.source == ir.IndicatorCall(
        0, "RSI", ir.FieldRef("eth", "close"), 14, "eth"
    )


def test_aggregates_and_snapshots_follow_the_rules_stream() -> None:
    program = compile_rules(
        "WHEN MEAN(btc.close) SINCE OPEN > x@OPEN AND SUM(x) SINCE T-4 > 0 THEN CLOSE eth",
        lets="LET x = btc.close * 2",
    )
    nodes = list(walk(program.rules[0].condition))
    aggregates = [node for node in nodes if isinstance(node, ir.CompiledAggregate)]
    snapshots = [node for node in nodes if isinstance(node, ir.Snapshot)]
    assert [(a.func, a.window, a.stream) for a in aggregates] == [
        ("MEAN", None, "eth"),
        ("SUM", 4, "eth"),
    ]
    assert [(s.let, s.kind, s.lag, s.stream) for s in snapshots] == [("x", "OPEN", 0, "eth")]


def test_rule_text_folds_whitespace_and_drops_comments() -> None:
    program = compile_rules(
        "  WHEN   btc.close>1 -- why\n\t AND /* note */ POSITION.btc == 0\n THEN LOG 'a  --  b'\n"
    )
    assert program.rules[0].text == "WHEN btc.close>1 AND POSITION.btc == 0 THEN LOG 'a  --  b'"


def test_exponential_let_expansion_is_refused_at_the_rule_not_run_out_of_memory() -> None:
    lets = "LET " + ", ".join(f"a{i} = a{i + 1} + a{i + 1}" for i in range(40)) + ", a40 = 1"
    with pytest.raises(CompileError) as caught:
        compile_rules("WHEN a0 > 0 THEN CLOSE btc", lets=lets)
    [error] = caught.value.errors
    assert (error.line, error.col) == (6, 1)
    assert "expands to more than" in error.message


def test_a_long_let_chain_is_refused_once_its_expansion_is_too_deep() -> None:
    lets = "LET " + ", ".join(f"a{i} = a{i + 1} + 1" for i in range(300)) + ", a300 = 1"
    with pytest.raises(CompileError) as caught:
        compile_rules("WHEN a0 > 0 THEN CLOSE btc", lets=lets)
    assert "levels deep" in caught.value.errors[0].message


@pytest.mark.parametrize(
    "text",
    ["(" * 200 + "1" + ")" * 200, "1" + " + 1" * 500, "- " * 3000 + "1", "NOT " * 3000 + "1"],
)
def test_deep_expressions_are_a_positioned_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(CompileError) as caught:
        compile_rules(f"WHEN {text} > 0 THEN CLOSE btc")
    assert caught.value.errors[0].line == 6
    assert "nested" in caught.value.errors[0].message


def test_identifiers_are_case_sensitive_and_keywords_are_reserved() -> None:
    with pytest.raises(CompileError) as caught:
        compile_rules("WHEN BTC.close > 0 THEN CLOSE btc")
    assert caught.value.errors[0].message == "unknown alias 'BTC' (did you mean 'btc'?)"
    with pytest.raises(CompileError) as caught:
        compile_rules("WHEN btc.close > 0 THEN CLOSE btc", lets="LET close = 1")
    assert caught.value.errors[0].message == "expected a LET name, got 'close' (a reserved keyword)"
