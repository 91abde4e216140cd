"""Where a bracket's exits go, and which exit of an OCO group a candle fills.

Levels are measured from the entry's fill price (after slippage): for a long entry (sign +1)
`STOP LOSS BY d` is entry - d, `PCT f` is entry * (1 - f), `AT p` is p; `TAKE PROFIT BY d` is
entry + d, `PCT f` entry * (1 + f), `RR x` entry + x * |entry - stop loss|. A short entry
(sign -1) mirrors them.

A candle that reaches several exits of one OCO group (both the stop loss and the take profit)
fills the one with the worst price for the trader: the order of high and low inside a candle is
unknown, so we assume the stop loss came first (pessimistic).
"""

from __future__ import annotations

from decimal import Decimal

from qkt.engine.matching import Match
from qkt.engine.orders import ExitPlan, Level, OrderKind, OrderRole, Side
from qkt.money import CONTEXT, ONE


def exit_levels(
    plan: ExitPlan, side: Side, entry: Decimal
) -> list[tuple[OrderKind, OrderRole, Decimal | None]]:
    """The exit orders a filled entry on `side` at `entry` gets: kind, role and level (the stop,
    the limit, or a trailing stop's starting anchor). None: not computable (RR, no stop)."""
    sign = Decimal(side.sign)
    stop = None if plan.stop_loss is None else stop_loss_price(plan.stop_loss, entry, sign)
    exits: list[tuple[OrderKind, OrderRole, Decimal | None]] = []
    if plan.stop_loss is not None:
        exits.append((OrderKind.STOP, OrderRole.STOP_LOSS, stop))
    if plan.take_profit is not None:
        take = take_profit_price(plan.take_profit, entry, sign, stop)
        exits.append((OrderKind.LIMIT, OrderRole.TAKE_PROFIT, take))
    if plan.trailing is not None:
        exits.append((OrderKind.TRAILING, OrderRole.TRAILING_EXIT, entry))
    return exits


def stop_loss_price(level: Level, entry: Decimal, sign: Decimal) -> Decimal:
    """Stop-loss price of a long (sign +1) or short (sign -1) entry filled at `entry`."""
    if level.kind == "AT":
        return level.value
    if level.kind == "BY":
        return CONTEXT.subtract(entry, CONTEXT.multiply(sign, level.value))
    return CONTEXT.multiply(entry, CONTEXT.subtract(ONE, CONTEXT.multiply(sign, level.value)))


def take_profit_price(
    level: Level, entry: Decimal, sign: Decimal, stop: Decimal | None
) -> Decimal | None:
    """Take-profit price; `RR x` is x times the stop distance beyond the entry."""
    if level.kind == "AT":
        return level.value
    if level.kind == "BY":
        return CONTEXT.add(entry, CONTEXT.multiply(sign, level.value))
    if level.kind == "PCT":
        return CONTEXT.multiply(entry, CONTEXT.add(ONE, CONTEXT.multiply(sign, level.value)))
    if stop is None:
        return None
    distance = abs(CONTEXT.subtract(entry, stop))
    return CONTEXT.add(entry, CONTEXT.multiply(sign, CONTEXT.multiply(level.value, distance)))


def worst_per_group(hits: list[Match]) -> list[Match]:
    """Keep one hit per OCO group: the worst fill for the trader (a stop loss over a target)."""
    best: dict[int, Match] = {}
    loose: list[Match] = []
    for hit in hits:
        group = hit.order.group
        if group is None:
            loose.append(hit)
            continue
        current = best.get(group)
        if current is None or _worse(hit, current):
            best[group] = hit
    return loose + list(best.values())


def _worse(a: Match, b: Match) -> bool:
    assert a.price is not None and b.price is not None
    if a.price != b.price:
        return a.price < b.price if a.order.side is Side.SELL else a.price > b.price
    return a.order.kind is not OrderKind.LIMIT and b.order.kind is OrderKind.LIMIT
