"""The state behind each stateful slot of a program: indicators, CROSSES, aggregates, snapshots.

Semantics (dsl.md "Meaning", the docstrings of dsl/compiled_exprs.py), and the choices made
where they are silent:
- CROSSES keeps "was left > right at the previous defined evaluation". The first defined
  evaluation is undefined; an evaluation with an undefined operand is undefined and leaves the
  state alone.
- `SINCE T-N` holds the last N values, the current close's included: undefined until N exist,
  and undefined while any of them is undefined (undefined spreads, aggregates too).
- `SINCE OPEN` holds the values of closes *after* the position opened: it is emptied when a fill
  opens, closes or flips the position (at that moment, not at the next close), so right after an
  entry it is undefined until the next close adds a value; undefined while flat. MAX/MIN/SUM/MEAN
  are kept as running figures (O(1) per close); one undefined value makes the rest of that
  position's aggregate undefined.
- `@buy`/`@sell`/`@open` hold one captured value; `@T-N` a ring of the last N + 1 values.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any, Literal

from qkt.dsl.program import CompiledAggregate, CompiledCrosses, IndicatorCall, Snapshot
from qkt.engine.feeding import IndicatorSlot, bar_of
from qkt.engine.indicators import Bar
from qkt.engine.plan import Plan
from qkt.engine.values import (
    UNDEFINED,
    Value,
    value_from_json,
    value_to_json,
)
from qkt.market.models import Candle
from qkt.money import CONTEXT

AggregateFunc = Literal["MAX", "MIN", "MEAN", "SUM"]


class CrossState:
    """`left CROSSES ABOVE|BELOW right`: was left above right at the last defined evaluation."""

    def __init__(self) -> None:
        self.above: bool | None = None

    def step(self, left: Value, right: Value, direction: Literal["ABOVE", "BELOW"]) -> Value:
        """One evaluation: TRUE on the crossing, FALSE otherwise, undefined as documented."""
        if not isinstance(left, Decimal) or not isinstance(right, Decimal):
            return UNDEFINED
        return self.turn(left > right, direction)

    def turn(self, above: bool, direction: Literal["ABOVE", "BELOW"]) -> Value:
        """One defined evaluation, given whether left is above right now."""
        before, self.above = self.above, above
        if before is None:
            return UNDEFINED
        return (above and not before) if direction == "ABOVE" else (before and not above)


def _fold(func: AggregateFunc, values: list[Decimal]) -> Decimal:
    if func == "MAX":
        return max(values)
    if func == "MIN":
        return min(values)
    total = values[0]
    for value in values[1:]:
        total = CONTEXT.add(total, value)
    return total if func == "SUM" else CONTEXT.divide(total, len(values))


class WindowState:
    """`f(x) SINCE T-N`: the last N values."""

    def __init__(self, size: int) -> None:
        self.values: deque[Value] = deque(maxlen=size)

    def push(self, value: Value) -> None:
        """Add the current close's value."""
        self.values.append(value)

    def result(self, func: AggregateFunc) -> Value:
        """MAX/MIN/SUM/MEAN of the window, or undefined."""
        if len(self.values) < (self.values.maxlen or 0):
            return UNDEFINED
        numbers = [v for v in self.values if isinstance(v, Decimal)]
        if len(numbers) != len(self.values):
            return UNDEFINED
        return _fold(func, numbers)


class SinceOpenState:
    """`f(x) SINCE OPEN`: running figures over the closes since the position opened."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start over (a position opened, closed or flipped)."""
        self.count = 0
        self.total = Decimal(0)
        self.high: Decimal | None = None
        self.low: Decimal | None = None
        self.spoiled = False  # an undefined value arrived: undefined until the next reset

    def push(self, value: Value) -> None:
        """Add the current close's value."""
        if not isinstance(value, Decimal):
            self.spoiled = True
            return
        self.count += 1
        self.total = CONTEXT.add(self.total, value)
        self.high = value if self.high is None else max(self.high, value)
        self.low = value if self.low is None else min(self.low, value)

    def result(self, func: AggregateFunc) -> Value:
        """MAX/MIN/SUM/MEAN since the open, or undefined."""
        if self.spoiled or self.high is None or self.low is None:
            return UNDEFINED
        if func == "MAX":
            return self.high
        if func == "MIN":
            return self.low
        return self.total if func == "SUM" else CONTEXT.divide(self.total, self.count)


class LagState:
    """`name@T-N`: the last N + 1 values, so the oldest is N closes ago."""

    def __init__(self, lag: int) -> None:
        self.values: deque[Value] = deque(maxlen=lag + 1)

    def push(self, value: Value) -> None:
        """Add the current close's value."""
        self.values.append(value)

    @property
    def value(self) -> Value:
        """The value N closes ago, or undefined."""
        return self.values[0] if len(self.values) == self.values.maxlen else UNDEFINED


class SlotTable:
    """Every slot's state, by slot number, one table per kind."""

    def __init__(self, plan: Plan) -> None:
        self.indicators: dict[int, IndicatorSlot] = {}
        self.crosses: dict[int, CrossState] = {}
        self.windows: dict[int, WindowState] = {}
        self.since_open: dict[int, SinceOpenState] = {}
        self.captured: dict[int, Value] = {}  # @buy / @sell / @open
        self.lags: dict[int, LagState] = {}
        self._bar: tuple[Candle, Bar] | None = None
        for slot, node in plan.stateful.items():
            if isinstance(node, IndicatorCall):
                self.indicators[slot] = IndicatorSlot(node)
            elif isinstance(node, CompiledCrosses):
                self.crosses[slot] = CrossState()
            elif isinstance(node, CompiledAggregate) and node.window is not None:
                self.windows[slot] = WindowState(node.window)
            elif isinstance(node, CompiledAggregate):
                self.since_open[slot] = SinceOpenState()
            elif isinstance(node, Snapshot) and node.kind == "T":
                self.lags[slot] = LagState(node.lag)
            else:
                self.captured[slot] = UNDEFINED

    def bar(self, candle: Candle) -> Bar:
        """`candle` as floats, converted once for all the candle indicators it feeds."""
        if self._bar is None or self._bar[0] is not candle:
            self._bar = (candle, bar_of(candle))
        return self._bar[1]

    @property
    def warm(self) -> bool:
        """Every indicator has a value."""
        return all(slot.warm for slot in self.indicators.values())

    def export(self) -> dict[str, Any]:
        """Every slot's state as JSON data (slot numbers as string keys, as JSON has them)."""
        since = self.since_open
        return {
            "indicators": {str(s): i.indicator.export() for s, i in self.indicators.items()},
            "crosses": {str(s): c.above for s, c in self.crosses.items()},
            "windows": {
                str(s): [value_to_json(v) for v in w.values] for s, w in self.windows.items()
            },
            "since_open": {
                str(s): {
                    "count": st.count,
                    "total": str(st.total),
                    "high": None if st.high is None else str(st.high),
                    "low": None if st.low is None else str(st.low),
                    "spoiled": st.spoiled,
                }
                for s, st in since.items()
            },
            "captured": {str(s): value_to_json(v) for s, v in self.captured.items()},
            "lags": {
                str(s): [value_to_json(v) for v in lag.values] for s, lag in self.lags.items()
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load what `export` returned."""
        for key, state in data["indicators"].items():
            slot = self.indicators[int(key)]
            slot.indicator.restore(state)
            slot.refresh()
        for key, above in data["crosses"].items():
            self.crosses[int(key)].above = above
        for key, values in data["windows"].items():
            self.windows[int(key)].values.extend(value_from_json(v) for v in values)
        for key, st in data["since_open"].items():
            state = self.since_open[int(key)]
            state.count = st["count"]
            state.total = Decimal(st["total"])
            state.high = None if st["high"] is None else Decimal(st["high"])
            state.low = None if st["low"] is None else Decimal(st["low"])
            state.spoiled = st["spoiled"]
        for key, value in data["captured"].items():
            self.captured[int(key)] = value_from_json(value)
        for key, values in data["lags"].items():
            self.lags[int(key)].values.extend(value_from_json(v) for v in values)
