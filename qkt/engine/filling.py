"""`FillingBook`: what a fill of one of the paper broker's orders does (paper.py decides when an
order fills, matching.py at which raw price). The price moves by the slippage and is capped at
a limit; the fee is paid (an exit's at most what the balance holds); the `OrderGate` is asked
again; the portfolio and the journal take the fill; then the rest of its OCO group and the exits
that no longer reduce the position are cancelled, and an entry's bracket or trailing exits are
placed.

The base of `PaperBroker`, below its placing and matching: one place for everything a fill
touches, whatever made it (a market order, a resting order, a liquidation).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from qkt.dsl.program import TimeInForce
from qkt.engine.events import OrderRejectedEvent, TradeEvent
from qkt.engine.exits import exit_levels
from qkt.engine.orderbook import OrderBook
from qkt.engine.orders import (
    ExitPlan,
    Fill,
    Instrument,
    Order,
    OrderKind,
    OrderRole,
    OrderStatus,
    Side,
)
from qkt.money import BPS, CONTEXT, ONE, ZERO


class FillingBook(OrderBook):
    """The paper broker's book, and how one of its orders fills."""

    def _fill(self, order: Order, raw: Decimal, ts: int) -> None:
        instrument = order.instrument
        qty = order.qty
        if order.role.is_exit:
            held = self._portfolio.position(instrument)
            reducible = -held if order.side is Side.BUY else held
            if reducible <= 0:
                self._finish(order, OrderStatus.CANCELLED, "nothing to reduce", ts)
                return
            qty = min(qty, reducible)
        price = self._execution_price(order, raw)
        fee = self._fee(qty, price)
        if order.role.is_exit and self._config.margin.enabled:
            fee = self._exit_fee(order, qty, price, fee)
        self._orders.pop(order.id, None)  # a halt the gate trips must not cancel it as well
        refused = self._refused(order, qty, price, fee)
        if refused is not None:
            self._reject(order, refused, ts)
            return
        applied = self._portfolio.apply(instrument, order.side, qty, price, fee)
        fill = Fill(
            id=self._next_fill,
            order_id=order.id,
            ts=ts,
            instrument=instrument,
            side=order.side,
            qty=qty,
            price=price,
            fee=fee,
            realized=applied.realized,
            position=applied.position,
            role=order.role,
            rule=order.rule,
        )
        self._next_fill += 1
        self._journal.record_fill(fill)  # durable before anyone hears of it
        self.trade_count += 1
        self.last_trade = fill
        self._finish(order, OrderStatus.FILLED, "filled", ts)
        self._events.add(TradeEvent(fill))
        if order.group is not None:
            for other in list(self._orders.values()):
                if other.group == order.group:
                    self._finish(other, OrderStatus.CANCELLED, "oco", ts)
        self._sweep_exits(instrument, ts)
        if order.exits is not None:
            self._place_exits(order, order.exits, fill)
        if self._gate is not None:
            self._gate.on_fill(fill)

    def _fee(self, qty: Decimal, price: Decimal) -> Decimal:
        return CONTEXT.divide(
            CONTEXT.multiply(CONTEXT.multiply(qty, price), self._config.fee_bps), BPS
        )

    def _exit_fee(self, order: Order, qty: Decimal, price: Decimal, fee: Decimal) -> Decimal:
        """An exit's fee, at most what the balance holds after its PnL: the paper exchange
        never lends, so closing a position near its liquidation price cannot leave a debt."""
        gross = self._portfolio.preview(order.instrument, order.side, qty, price, ZERO).realized
        left = CONTEXT.add(self._portfolio.balance, gross)
        return min(fee, max(ZERO, left))

    def _refused(self, order: Order, qty: Decimal, price: Decimal, fee: Decimal) -> str | None:
        return None if self._gate is None else self._gate.refuse(order, qty, price, fee)

    def _reject(self, order: Order, reason: str, ts: int) -> None:
        """Refuse an order (at placement, or when it would fill): journaled as REJECTED."""
        self._orders.pop(order.id, None)
        rejected = replace(order, status=OrderStatus.REJECTED)
        self._journal.record_order(rejected)
        self._events.add(OrderRejectedEvent(ts, rejected, reason))

    def _execution_price(self, order: Order, raw: Decimal) -> Decimal:
        if order.role is OrderRole.LIQUIDATION:
            return raw  # at the liquidation price: the exchange takes the position over
        slip = CONTEXT.divide(self._config.slippage_bps, BPS)
        if order.side is Side.BUY:
            price = CONTEXT.multiply(raw, CONTEXT.add(ONE, slip))
        else:
            price = CONTEXT.multiply(raw, CONTEXT.subtract(ONE, slip))
        if order.limit is not None and order.kind in (OrderKind.LIMIT, OrderKind.STOP_LIMIT):
            price = min(price, order.limit) if order.side is Side.BUY else max(price, order.limit)
        return price

    def _sweep_exits(self, instrument: Instrument, ts: int) -> None:
        held = self._portfolio.position(instrument)
        reason = "position closed" if held == 0 else "position flipped"
        for order in list(self._open_in(instrument)):
            if order.role.is_exit and not _reduces(order.side, held):
                self._finish(order, OrderStatus.CANCELLED, reason, ts)

    def _place_exits(self, entry: Order, plan: ExitPlan, fill: Fill) -> None:
        opened = fill.position if entry.side is Side.BUY else -fill.position
        if opened <= 0:
            return  # the entry only reduced or closed a position: nothing of its own to protect
        qty = min(fill.qty, opened)
        group = self._take_group_id()
        exits = exit_levels(plan, entry.side, fill.price)
        for kind, role, level in exits:
            if level is None or level <= 0:
                self._events.warn_once(
                    f"exit-{role.value}",
                    f"{role.value.lower().replace('_', ' ')} price {level} is not positive;"
                    " that exit was not placed",
                    rule=entry.rule,
                )
                continue
            order = Order(
                id=self._take_order_id(),
                instrument=entry.instrument,
                side=entry.side.opposite,
                kind=kind,
                qty=qty,
                tif=TimeInForce.GTC,
                role=role,
                created_ms=fill.ts,
                rule=entry.rule,
                stop=level if kind is OrderKind.STOP else None,
                limit=level if kind is OrderKind.LIMIT else None,
                trail=plan.trailing if kind is OrderKind.TRAILING else None,
                anchor=level if kind is OrderKind.TRAILING else None,
                group=group,
                parent=entry.id,
            )
            self._rest(order, fill.ts)


def _reduces(side: Side, held: Decimal) -> bool:
    """An order on `side` makes a position of `held` smaller."""
    return held > 0 if side is Side.SELL else held < 0
