"""Where an order fills: the paper market's fill rules, as pure functions of an order and prices.

The paper market has unlimited liquidity; an order fills whole or not at all. A resting order is
matched against one candle's OHLC; since the path inside a candle is unknown, the rules are:

- LIMIT buy at L fills when low <= L, at min(open, L) (the limit or better: a candle that opens
  through the limit fills at the open); a sell when high >= L, at max(open, L).
- STOP buy at S triggers when high >= S and fills at max(open, S): a stop gapped over fills at
  the open, not at its level; a sell when low <= S, at min(open, S).
- STOP_LIMIT: the stop triggers as above and the order becomes a limit. On the trigger candle it
  fills at the trigger price if that is within the limit; if the stop triggered at the open (a
  gap) it may still fill at the limit later in the candle; if it triggered inside the candle
  beyond the limit, it rests as a limit from the next candle (the low may have come first).
- TRAILING sell: level = anchor - amount (or anchor * (1 - fraction)); the anchor is the highest
  price since placement. The candle is first checked against the level as it stood at the open
  (a fill at min(open, level)), and only then the anchor moves to the candle's high: a new high
  and a drop below the raised level inside one candle are not assumed to happen in that order.
  A buy trailing stop mirrors this with the lowest price.
- MARKET (waiting for the next open) fills at the open.

`at_price` is the same question at a single price (an IOC/FOK order, or a market order, now).
Slippage, fees and the limit cap are the broker's business (paper.py), not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from qkt.engine.orders import Order, OrderKind, Side, Trail
from qkt.market.models import Candle
from qkt.money import CONTEXT, ONE


@dataclass(frozen=True, slots=True)
class Match:
    """The result of matching one order against one candle."""

    order: Order  # the order as it stands after the candle (anchor moved, stop-limit triggered)
    price: Decimal | None  # the raw fill price (before slippage), or None: no fill
    at_open: bool = False  # filled at the candle's open


def trailing_level(side: Side, anchor: Decimal, trail: Trail) -> Decimal:
    """The trigger level of a trailing stop on `side` whose best price so far is `anchor`."""
    if trail.percent:
        factor = CONTEXT.subtract(ONE, trail.amount) if side is Side.SELL else trail.amount + ONE
        return CONTEXT.multiply(anchor, factor)
    if side is Side.SELL:
        return CONTEXT.subtract(anchor, trail.amount)
    return CONTEXT.add(anchor, trail.amount)


def _limit_price(side: Side, limit: Decimal, candle: Candle) -> Decimal | None:
    """Where a limit fills on this candle (the limit or better), or None."""
    if side is Side.BUY:
        return min(candle.open, limit) if candle.low <= limit else None
    return max(candle.open, limit) if candle.high >= limit else None


def _stop_price(side: Side, stop: Decimal, candle: Candle) -> Decimal | None:
    """Where a stop triggers on this candle (the open when gapped over), or None."""
    if side is Side.BUY:
        return max(candle.open, stop) if candle.high >= stop else None
    return min(candle.open, stop) if candle.low <= stop else None


def _within_limit(side: Side, price: Decimal, limit: Decimal) -> bool:
    return price <= limit if side is Side.BUY else price >= limit


def _reaches_stop(side: Side, price: Decimal, stop: Decimal) -> bool:
    return price >= stop if side is Side.BUY else price <= stop


def _result(order: Order, price: Decimal | None, candle: Candle) -> Match:
    return Match(order, price, at_open=price is not None and price == candle.open)


def match_candle(order: Order, candle: Candle) -> Match:
    """Match a resting (or next-open market) order against one candle."""
    side = order.side
    if order.kind is OrderKind.MARKET:
        return Match(order, candle.open, at_open=True)
    if order.kind is OrderKind.LIMIT or (order.kind is OrderKind.STOP_LIMIT and order.triggered):
        assert order.limit is not None
        return _result(order, _limit_price(side, order.limit, candle), candle)
    if order.kind is OrderKind.STOP:
        assert order.stop is not None
        return _result(order, _stop_price(side, order.stop, candle), candle)
    if order.kind is OrderKind.STOP_LIMIT:
        assert order.stop is not None and order.limit is not None
        trigger = _stop_price(side, order.stop, candle)
        if trigger is None:
            return Match(order, None)
        triggered = replace(order, triggered=True)
        if _within_limit(side, trigger, order.limit):
            return _result(triggered, trigger, candle)
        if trigger == candle.open:  # gapped past the limit at the open: the candle follows
            return Match(triggered, _limit_price(side, order.limit, candle))
        return Match(triggered, None)
    return _match_trailing(order, candle)


def _match_trailing(order: Order, candle: Candle) -> Match:
    assert order.trail is not None and order.anchor is not None
    level = trailing_level(order.side, order.anchor, order.trail)
    price = _stop_price(order.side, level, candle)
    if price is not None:
        return _result(order, price, candle)
    if order.side is Side.SELL:
        anchor = max(order.anchor, candle.high)
    else:
        anchor = min(order.anchor, candle.low)
    return Match(order if anchor == order.anchor else replace(order, anchor=anchor), None)


def at_price(order: Order, price: Decimal) -> Decimal | None:
    """The fill price of an order that must fill at `price` right now (market, IOC, FOK)."""
    side = order.side
    if order.kind is OrderKind.MARKET:
        return price
    if order.kind is OrderKind.LIMIT:
        assert order.limit is not None
        return price if _within_limit(side, price, order.limit) else None
    if order.kind is OrderKind.STOP:
        assert order.stop is not None
        return price if _reaches_stop(side, price, order.stop) else None
    if order.kind is OrderKind.STOP_LIMIT:
        assert order.stop is not None and order.limit is not None
        ok = _reaches_stop(side, price, order.stop) and _within_limit(side, price, order.limit)
        return price if ok else None
    assert order.trail is not None and order.anchor is not None
    level = trailing_level(side, order.anchor, order.trail)
    return price if _reaches_stop(side, price, level) else None
