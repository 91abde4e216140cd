"""`Route`: what a close of one candle key does, worked out once per key instead of on every
candle: the aliases it closes, the instrument it marks, whether its symbol's resting orders are
matched on it, the indicator feeders, `@T-N` histories and aggregates it updates, and its rules
with their compiled conditions. `Routes` finds a key's route by the key object's identity (the
replay and the hub hand out one key object per stream), falling back to equality.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Final

from qkt.dsl.program import CompiledAggregate, CompiledRule, Snapshot
from qkt.engine.feeding import Feeder
from qkt.engine.orders import Instrument
from qkt.engine.plan import Plan
from qkt.engine.values import Value
from qkt.market.models import CandleKey

_MAX_PINNED: Final = 1_024  # distinct key objects remembered by identity


class Route:
    """One candle key's close, precomputed from the plan."""

    __slots__ = (
        "aggregates",
        "aliases",
        "feeders",
        "finest",
        "instrument",
        "key",
        "lags",
        "last_open",
        "mark",
        "rules",
        "sole",
        "step_ms",
    )

    def __init__(
        self,
        plan: Plan,
        key: CandleKey,
        feeders: Callable[[list[int]], tuple[Feeder, ...]],
        condition: Callable[[CompiledRule], Callable[[], Value]],
        mark: Callable[[Instrument], Callable[[Decimal], None]],
    ) -> None:
        aliases = plan.aliases[key]
        self.key = key
        self.aliases = aliases
        self.instrument = Instrument.of(key)
        self.mark = mark(self.instrument)  # sets the symbol's mark (Portfolio.mark_setter)
        self.step_ms = key.timeframe.ms
        self.finest = plan.finest[self.instrument] == key
        # Every alias of the symbol closes with this key: the candle is the symbol's latest.
        self.sole = set(plan.streams[self.instrument]) <= set(aliases)
        self.feeders = feeders(
            [node.slot for alias in aliases for node in plan.indicators.get(alias, ())]
        )
        self.lags: tuple[Snapshot, ...] = tuple(
            lag for alias in aliases for lag in plan.lags.get(alias, ())
        )
        self.aggregates: tuple[CompiledAggregate, ...] = tuple(
            agg for alias in aliases for agg in plan.aggregates.get(alias, ())
        )
        self.rules = tuple((rule, condition(rule)) for rule in plan.rules[key])
        self.last_open: int | None = None  # open time of the last candle accepted


class Routes:
    """Every key's route, found by identity first."""

    def __init__(self, routes: dict[CandleKey, Route]) -> None:
        self.by_key = routes
        self._by_id: dict[int, Route] = {}
        self._pinned: list[CandleKey] = []  # an id names its key only while the key is alive
        self._last: tuple[CandleKey | None, Route | None] = (None, None)

    def get(self, key: CandleKey) -> Route | None:
        """The route of `key`, None if the strategy has no such stream."""
        last_key, route = self._last
        if key is last_key:  # one stream: the same key object, candle after candle
            return route
        route = self._by_id.get(id(key))
        if route is None:
            route = self.by_key.get(key)
            if route is None:
                return None
            if len(self._pinned) >= _MAX_PINNED:  # a host making a key object per candle
                self._by_id.clear()
                self._pinned.clear()
            self._by_id[id(key)] = route
            self._pinned.append(key)
        self._last = (key, route)
        return route

    def last_ms(self) -> dict[CandleKey, int]:
        """Open time of the last candle accepted, per key."""
        return {k: r.last_open for k, r in self.by_key.items() if r.last_open is not None}
