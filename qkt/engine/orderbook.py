"""`OrderBook`: the paper broker's state and bookkeeping. It holds the open orders by id (in
placement order), the order, fill and OCO group counters, the trade count and the last trade;
it rests, finishes and journals orders, and saves the book to `EngineState` and loads it back.

Its own module so that the broker's behaviour (how an order fills, filling.py; when, paper.py)
reads apart from the ledger that both of them write to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from qkt.engine.config import EngineConfig
from qkt.engine.events import EventBuffer, OrderEvent
from qkt.engine.orders import Fill, Instrument, Order, OrderStatus
from qkt.engine.portfolio import Portfolio
from qkt.engine.protocols import Journal, OrderGate


class OrderBook:
    """The book of one strategy's paper broker: its open orders, counters and trade count (the
    base of `PaperBroker`, paper.py)."""

    def __init__(
        self,
        config: EngineConfig,
        portfolio: Portfolio,
        journal: Journal,
        events: EventBuffer,
        gate: OrderGate | None = None,
    ) -> None:
        self._config = config
        self._gate = gate
        self._portfolio = portfolio
        self._journal = journal
        self._events = events
        self._orders: dict[int, Order] = {}  # open orders by id, in placement order
        self._next_order = 1
        self._next_fill = 1
        self._next_group = 1
        self.trade_count = 0
        self.last_trade: Fill | None = None

    @property
    def open_orders(self) -> tuple[Order, ...]:
        """Resting orders, and market orders waiting for the next open, in placement order."""
        return tuple(self._orders.values())

    # -- bookkeeping -------------------------------------------------------------------------

    def _open_in(self, instrument: Instrument) -> Iterator[Order]:
        return (o for o in list(self._orders.values()) if o.instrument == instrument)

    def _rest(self, order: Order, ts: int) -> None:
        self._orders[order.id] = order
        self._record(order, "placed", ts)

    def _finish(self, order: Order, status: OrderStatus, reason: str, ts: int) -> None:
        self._orders.pop(order.id, None)
        self._record(replace(order, status=status), reason, ts)

    def _record(self, order: Order, reason: str, ts: int) -> None:
        self._journal.record_order(order)
        self._events.add(OrderEvent(ts, order, reason))

    def _take_order_id(self) -> int:
        self._next_order += 1
        return self._next_order - 1

    def _take_group_id(self) -> int:
        self._next_group += 1
        return self._next_group - 1

    def export(self) -> dict[str, Any]:
        """The book and counters as JSON-able data."""
        return {
            "orders": [order.to_json() for order in self._orders.values()],
            "next_order": self._next_order,
            "next_fill": self._next_fill,
            "next_group": self._next_group,
            "trade_count": self.trade_count,
            "last_trade": None if self.last_trade is None else self.last_trade.to_json(),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load what `export` returned."""
        self._orders = {o["id"]: Order.from_json(o) for o in data["orders"]}
        self._next_order = data["next_order"]
        self._next_fill = data["next_fill"]
        self._next_group = data["next_group"]
        self.trade_count = data["trade_count"]
        last = data["last_trade"]
        self.last_trade = None if last is None else Fill.from_json(last)
