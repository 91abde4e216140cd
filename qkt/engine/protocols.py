"""The engine's contracts: the `Journal` it writes to (and an in-memory one), and the
`OrderGate` its paper broker asks before accepting or filling an order.

The engine calls the journal synchronously, at the moment something happens and before the
event is reported from `on_candle`: a fill is durable (in the worker's SQLite journal) before
anyone is told about it. A journal that raises stops `on_candle` with that error; the worker
decides what a failing disk means (the engine does not swallow it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from qkt.engine.events import SignalEvent
from qkt.engine.orders import Fill, Order


class Journal(Protocol):
    """Where the engine records what happened, as it happens."""

    def record_fill(self, fill: Fill) -> None:
        """A fill, before it is reported."""

    def record_order(self, order: Order) -> None:
        """An order as it now stands (placed, triggered, filled, cancelled, expired). A trailing
        stop's anchor moves on every candle without being recorded; `EngineState` carries it."""

    def record_signal(self, signal: SignalEvent) -> None:
        """A rule that fired."""


class OrderGate(Protocol):
    """What the paper broker asks before it accepts or fills an order (guard.py)."""

    def refuse(self, order: Order, qty: Decimal, price: Decimal, fee: Decimal) -> str | None:
        """Why `order` may not fill `qty` at `price` paying `fee`; None if it may."""

    def on_fill(self, fill: Fill) -> None:
        """A fill was booked (the limits measure it)."""


class MemoryJournal:
    """A `Journal` that keeps everything in lists (tests, backtests that need no file)."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.orders: list[Order] = []
        self.signals: list[SignalEvent] = []

    def record_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def record_order(self, order: Order) -> None:
        self.orders.append(order)

    def record_signal(self, signal: SignalEvent) -> None:
        self.signals.append(signal)


class NullJournal:
    """A `Journal` that records nothing (benchmarks, warm-up runs)."""

    def record_fill(self, fill: Fill) -> None:
        pass

    def record_order(self, order: Order) -> None:
        pass

    def record_signal(self, signal: SignalEvent) -> None:
        pass
