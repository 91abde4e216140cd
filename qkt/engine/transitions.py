"""`PositionWatch`: what a position opening, closing or flipping does to a strategy's state.

A fill that opens, closes or flips a position (a transition: the portfolio counts them, and
each symbol's position has an epoch that moves with them) empties the `SINCE OPEN` aggregates of
that symbol's streams and captures the `@open` snapshots there (or clears them when flat). A BUY
or SELL rule captures its stream's `@buy`/`@sell` snapshots as it fires, before its order is
placed. The engine calls `observe` after anything that may have filled, and `capture` when a
rule fires (docs/language.md).
"""

from __future__ import annotations

from collections.abc import Callable

from qkt.dsl.program import CompiledAggregate, CompiledExpr, Snapshot
from qkt.engine.orders import Instrument
from qkt.engine.plan import Plan
from qkt.engine.portfolio import Portfolio
from qkt.engine.slots import SlotTable
from qkt.engine.values import UNDEFINED, Value


class PositionWatch:
    """Applies position transitions to the slots of one strategy's snapshots and aggregates."""

    def __init__(
        self,
        plan: Plan,
        portfolio: Portfolio,
        slots: SlotTable,
        value_in_rule: Callable[[CompiledExpr], Value],
        value_in_slot: Callable[[int, CompiledExpr], Value],
        seen_epochs: dict[Instrument, int],
    ) -> None:
        """`seen_epochs`: each symbol's position epoch already applied (a restored state's)."""
        self._plan = plan
        self._portfolio = portfolio
        self._slots = slots
        self._value_in_rule = value_in_rule
        self._value_in_slot = value_in_slot
        self.seen_epochs = seen_epochs
        self._seen_transitions = -1  # the portfolio's transition count last observed

    def capture(self, side: str, stream: str) -> None:
        """A `side` (BUY or SELL) rule of `stream` fires: its `@buy`/`@sell` snapshots take
        their values now."""
        for node in self._plan.stateful.values():
            if isinstance(node, Snapshot) and node.kind == side and node.stream == stream:
                self._slots.captured[node.slot] = self._value_in_rule(node.value)

    def observe(self) -> None:
        """Apply transitions: empty `SINCE OPEN`, capture or clear `@open`."""
        transitions = self._portfolio.transitions
        if transitions == self._seen_transitions:
            return  # no position opened, closed or flipped since the last look
        self._seen_transitions = transitions
        for instrument, streams in self._plan.streams.items():
            epoch = self._portfolio.epoch(instrument)
            if epoch == self.seen_epochs.get(instrument, 0):
                continue
            self.seen_epochs[instrument] = epoch
            is_open = self._portfolio.position(instrument) != 0
            for node in self._plan.stateful.values():
                if getattr(node, "stream", None) not in streams:
                    continue
                if isinstance(node, CompiledAggregate) and node.window is None:
                    self._slots.since_open[node.slot].reset()
                elif isinstance(node, Snapshot) and node.kind == "OPEN":
                    value = self._value_in_slot(node.slot, node.value) if is_open else UNDEFINED
                    self._slots.captured[node.slot] = value
