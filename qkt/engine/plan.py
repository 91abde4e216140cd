"""What the engine works out once from a `Program`: who closes with each candle key, which
stateful slots each close updates and in which order, and where each alias trades.

Aliases that share a key (`btc` and `btc2` both SIM:BTCUSDT:1m) close together: one candle is
the close of each of them, and the rules of all of them run in file order. Resting orders of a
symbol are matched on its finest stream (the smallest timeframe any alias of it reads).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from qkt.dsl.program import (
    Arith,
    CandleRef,
    Compare,
    CompiledAction,
    CompiledAggregate,
    CompiledBetween,
    CompiledCase,
    CompiledCrosses,
    CompiledExpr,
    CompiledInList,
    CompiledRule,
    CompiledSizeRisk,
    IndicatorCall,
    LimitOrder,
    Logic,
    MathCall,
    Neg,
    Not,
    OrderAction,
    Program,
    SizeNotional,
    SizePercentOf,
    SizeQuantity,
    Snapshot,
    StopOrder,
    TrailingOrder,
)
from qkt.engine.orders import Instrument
from qkt.market.models import CandleKey

Node = CompiledExpr | CandleRef
Stateful = IndicatorCall | CompiledCrosses | CompiledAggregate | Snapshot
N = TypeVar("N", IndicatorCall, Snapshot, CompiledAggregate)


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node."""
    if isinstance(node, IndicatorCall):
        return (node.source,) if node.other is None else (node.source, node.other)
    if isinstance(node, MathCall):
        return node.args
    if isinstance(node, Neg | Not | CompiledAggregate):
        return (node.operand,)
    if isinstance(node, Arith | Compare | Logic | CompiledCrosses):
        return (node.left, node.right)
    if isinstance(node, CompiledBetween):
        return (node.value, node.low, node.high)
    if isinstance(node, CompiledInList):
        return (node.value, *node.options)
    if isinstance(node, CompiledCase):
        return (*(part for branch in node.branches for part in branch), node.default)
    if isinstance(node, Snapshot):
        return (node.value,)
    return ()


def walk(node: Node) -> Iterator[Node]:
    """Every node under `node`, children before their parent (an inner indicator first)."""
    for child in children(node):
        yield from walk(child)
    yield node


def action_exprs(action: CompiledAction) -> tuple[CompiledExpr, ...]:
    """Every expression an action evaluates when it fires."""
    if not isinstance(action, OrderAction):
        return ()
    found: list[CompiledExpr | None] = []
    sizing = action.sizing
    if isinstance(sizing, SizeQuantity):
        found.append(sizing.quantity)
    elif isinstance(sizing, SizeNotional | CompiledSizeRisk):
        found.append(sizing.amount)
    elif isinstance(sizing, SizePercentOf):
        found.append(sizing.fraction)
    order = action.order_type
    if isinstance(order, LimitOrder):
        found.append(order.price)
    elif isinstance(order, StopOrder):
        found += [order.stop, order.limit]
    elif isinstance(order, TrailingOrder):
        found.append(order.amount)
    if action.bracket is not None:
        for level in (action.bracket.stop_loss, action.bracket.take_profit):
            found.append(None if level is None else level.value)
    if action.oco is not None:
        found += [action.oco.stop, action.oco.limit]
    if action.trailing_exit is not None:
        found.append(action.trailing_exit.amount)
    return tuple(expr for expr in found if expr is not None)


@dataclass(frozen=True, slots=True)
class Plan:
    """The program, indexed for `on_candle`."""

    program: Program
    instruments: dict[str, Instrument]  # alias -> what it trades
    aliases: dict[CandleKey, tuple[str, ...]]  # key -> the aliases that close with it
    finest: dict[Instrument, CandleKey]  # where the symbol's resting orders are matched
    streams: dict[Instrument, tuple[str, ...]]  # instrument -> every alias that trades it
    rules: dict[
        CandleKey, tuple[CompiledRule, ...]
    ]  # key -> rules evaluated on its close, file order
    stateful: dict[int, Stateful]  # slot -> its node
    indicators: dict[str, tuple[IndicatorCall, ...]]  # root alias -> update order (inner first)
    lags: dict[str, tuple[Snapshot, ...]]  # stream -> `@T-N` snapshots
    aggregates: dict[
        str, tuple[CompiledAggregate, ...]
    ]  # stream -> aggregates updated on its close
    fingerprint: str  # changes when the rules or streams change, not with comments or layout


def build_plan(program: Program) -> Plan:
    """Index `program`; raises ValueError if two different nodes claim one slot."""
    instruments = {decl.alias: Instrument.of(decl.key) for decl in program.streams}
    aliases: dict[CandleKey, tuple[str, ...]] = {}
    finest: dict[Instrument, CandleKey] = {}
    for decl in program.streams:
        aliases[decl.key] = (*aliases.get(decl.key, ()), decl.alias)
        inst = instruments[decl.alias]
        if inst not in finest or decl.key.timeframe < finest[inst].timeframe:
            finest[inst] = decl.key
    rules = {
        key: tuple(rule for rule in program.rules if rule.stream in names)
        for key, names in aliases.items()
    }
    stateful: dict[int, Stateful] = {}
    for rule in program.rules:
        for root in (rule.condition, *action_exprs(rule.action)):
            for node in walk(root):
                if isinstance(node, IndicatorCall | CompiledCrosses | CompiledAggregate | Snapshot):
                    seen = stateful.setdefault(node.slot, node)
                    if type(seen) is not type(node):
                        raise ValueError(f"slot {node.slot} is used by two kinds of node")
    nodes = list(stateful.values())
    return Plan(
        program=program,
        instruments=instruments,
        aliases=aliases,
        finest=finest,
        streams={i: tuple(a for a, j in instruments.items() if j == i) for i in finest},
        rules=rules,
        stateful=stateful,
        indicators=_group([n for n in nodes if isinstance(n, IndicatorCall)], lambda n: n.root),
        lags=_group(
            [n for n in nodes if isinstance(n, Snapshot) and n.kind == "T"], lambda n: n.stream
        ),
        aggregates=_group(
            [n for n in nodes if isinstance(n, CompiledAggregate)], lambda n: n.stream
        ),
        fingerprint=_fingerprint(program),
    )


def _group(nodes: list[N], stream_of: Callable[[N], str]) -> dict[str, tuple[N, ...]]:
    grouped: dict[str, list[N]] = {}
    for node in nodes:
        grouped.setdefault(stream_of(node), []).append(node)
    return {stream: tuple(found) for stream, found in grouped.items()}


def _fingerprint(program: Program) -> str:
    meaning = (
        tuple((decl.alias, str(decl.key)) for decl in program.streams),
        tuple((rule.index, rule.stream, rule.condition, rule.action) for rule in program.rules),
        program.slot_count,
    )
    return hashlib.sha256(repr(meaning).encode()).hexdigest()[:16]
