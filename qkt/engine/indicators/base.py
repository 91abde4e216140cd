"""What every incremental indicator is, and the small windows several of them share.

An indicator is fed one input per candle (a float, a candle, or a pair of floats) and holds its
outputs as floats, None until warm. State is exported generically (every attribute, nested
indicators and deques included) so that a new indicator cannot forget a field in `export`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Bar:
    """The candle fields candle indicators read, as floats (and the candle's open time)."""

    open: float
    high: float
    low: float
    close: float
    volume: float
    open_ms: int = 0


class State:
    """Anything with incremental state: exported and restored attribute by attribute."""

    def export(self) -> dict[str, Any]:
        """Internal state as JSON-able data (floats round-trip exactly)."""
        return {name: _export(value) for name, value in vars(self).items()}

    def restore(self, data: dict[str, Any]) -> None:
        """Load what `export` returned."""
        for name, saved in data.items():
            current = getattr(self, name)
            if isinstance(current, State):
                current.restore(saved)
            elif isinstance(current, tuple | list) and any(isinstance(v, State) for v in current):
                for part, part_saved in zip(current, saved, strict=True):
                    part.restore(part_saved)
            elif isinstance(current, deque):
                setattr(self, name, deque(saved, maxlen=current.maxlen))
            else:
                setattr(self, name, saved)


def _export(value: Any) -> Any:
    if isinstance(value, State):
        return value.export()
    if isinstance(value, tuple | list):
        return [_export(item) for item in value]
    if isinstance(value, deque):
        return [list(item) if isinstance(item, tuple | list) else item for item in value]
    return value


class Indicator(State):
    """One incremental instance. `value` is the (first) output; multi-output indicators also
    have one attribute per name in `outputs`."""

    outputs: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "series"  # or "candle", "two series"

    def __init__(self) -> None:
        self.value: float | None = None

    def output(self, field: str | None) -> float | None:
        """The output called `field` (None: the single value)."""
        if field is None or field == "value":
            return self.value
        result: float | None = getattr(self, field)
        return result

    def update(self, x: float) -> None:
        """Feed the next value (series indicators)."""
        raise TypeError(f"{type(self).__name__} is not fed a series")

    def update_candle(self, bar: Bar) -> None:
        """Feed the next candle (candle indicators)."""
        raise TypeError(f"{type(self).__name__} is not fed candles")

    def update_pair(self, x: float, y: float) -> None:
        """Feed the next pair of values (two-series indicators)."""
        raise TypeError(f"{type(self).__name__} is not fed two series")


class Extreme(State):
    """Highest (or lowest) of the last n values in O(1) amortized: a monotonic deque of
    (index, value). On ties the newest wins, as in TA-Lib's AROON."""

    def __init__(self, period: int, highest: bool) -> None:
        self.period = period
        self.highest = highest
        self.items: deque[list[float]] = deque()
        self.count = 0

    def push(self, x: float) -> None:
        items = self.items
        if self.highest:
            while items and items[-1][1] <= x:
                items.pop()
        else:
            while items and items[-1][1] >= x:
                items.pop()
        items.append([self.count, x])
        self.count += 1
        if items[0][0] <= self.count - 1 - self.period:
            items.popleft()

    @property
    def full(self) -> bool:
        return self.count >= self.period

    @property
    def best(self) -> float:
        return self.items[0][1]

    @property
    def age(self) -> int:
        """How many values ago the extreme was seen (0: the newest)."""
        return int(self.count - 1 - self.items[0][0])


class Ring(State):
    """The last n values (a bounded deque) with a running sum, added before removed as TA-Lib
    keeps its period totals."""

    def __init__(self, period: int) -> None:
        self.values: deque[float] = deque(maxlen=period)
        self.period = period

    def push(self, x: float) -> float | None:
        """Add x; return the value that fell out (None while filling)."""
        dropped = self.values[0] if len(self.values) == self.period else None
        self.values.append(x)
        return dropped

    @property
    def full(self) -> bool:
        return len(self.values) == self.period


class Constancy(State):
    """Whether the last n values are all equal, in O(1): the number of changes among them."""

    def __init__(self, period: int) -> None:
        self.flags: deque[bool] = deque(maxlen=max(period - 1, 0))
        self.changes = 0
        self.last: float | None = None

    def push(self, x: float) -> None:
        if self.last is not None and self.flags.maxlen:
            if len(self.flags) == self.flags.maxlen:
                self.changes -= self.flags[0]
            changed = x != self.last
            self.flags.append(changed)
            self.changes += changed
        self.last = x

    @property
    def flat(self) -> bool:
        return self.changes == 0
