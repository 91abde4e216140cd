"""`EngineParts`: what a `StrategyEngine` is made of, and how it is built, saved and restored.

The parts are the plan worked out from the program, the portfolio, the slots, the latest
candles, the guard and the paper broker, the evaluator and the action resolver, the position
watch and the routes. They are built from a program and a config, exported to an `EngineState`
and rebuilt from one, in one place, so that a part added to the engine is added to its state in
the same module. The base of `StrategyEngine` (strategy.py), which runs the candles through them.
"""

from __future__ import annotations

from collections.abc import Callable

from qkt.dsl.program import CompiledExpr, Program
from qkt.engine.actions import ActionResolver
from qkt.engine.config import EngineConfig
from qkt.engine.evaluator import Evaluator
from qkt.engine.events import EventBuffer, LogLevel
from qkt.engine.feeding import Feeder, IndicatorSlot, feeders
from qkt.engine.guard import Guard
from qkt.engine.orders import Instrument
from qkt.engine.paper import PaperBroker
from qkt.engine.plan import build_plan
from qkt.engine.portfolio import Portfolio
from qkt.engine.protocols import Journal, NullJournal
from qkt.engine.routes import Route, Routes
from qkt.engine.slots import SlotTable
from qkt.engine.state import STATE_VERSION, EngineState, candle_from_json, candle_to_json
from qkt.engine.transitions import PositionWatch
from qkt.engine.values import Value
from qkt.market.models import Candle, CandleKey


class EngineParts:
    """The parts of one strategy's engine, built, exported and restored (the base of
    `StrategyEngine`)."""

    # `StrategyEngine._value_in_slot`: evaluates outside any rule (the feeders' and the watch's).
    _value_in_slot: Callable[[int, CompiledExpr], Value]

    def __init__(
        self,
        program: Program,
        config: EngineConfig | None = None,
        journal: Journal | None = None,
        state: EngineState | None = None,
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """`clock` (epoch ms) times halts and measures the risk limits' days and minutes; by
        default it is the close time of the candle being processed (right for backtests)."""
        self.program = program
        self.config = config or EngineConfig()
        self._journal: Journal = journal or NullJournal()
        self._plan = build_plan(program)
        self._events = EventBuffer()
        self._portfolio = Portfolio(self.config.balance)
        self._slots = SlotTable(self._plan)
        self._indicator_texts: list[tuple[str, IndicatorSlot]] | None = None  # see indicators
        self._candles: dict[str, Candle] = {}  # alias -> its latest closed candle
        self._seen_epochs: dict[Instrument, int] = {}  # a restored state's, for the watch
        self._clock = clock or (lambda: self._events.now_ms)
        self._own_clock = clock is None  # the clock is the candles': `tick` can be skipped early
        self._guard, self._broker = self._book(self._portfolio)
        self._evaluator = Evaluator(
            self._plan, self._slots, self._candles, self._portfolio, self._events
        )
        self._resolver = ActionResolver(
            self._plan, self._evaluator, self._portfolio, self.config.qty_step
        )
        last_ms: dict[CandleKey, int] = {}
        if state is not None:
            last_ms = self._restore(state)
        self._watch = PositionWatch(
            self._plan,
            self._portfolio,
            self._slots,
            self._evaluator.value,
            self._value_in_slot,
            self._seen_epochs,
        )
        self._routes = self._build_routes()
        for key, ms in last_ms.items():
            route = self._routes.get(key)
            if route is not None:
                route.last_open = ms

    def _build_routes(self) -> Routes:
        """Each key's route (after a restore: it holds the evaluator's compiled conditions)."""
        slots, candles = self._slots, self._candles

        def evaluator_for(slot: int) -> Callable[[CompiledExpr], Value]:
            return lambda expr: self._value_in_slot(slot, expr)

        def feed(numbers: list[int]) -> tuple[Feeder, ...]:
            return feeders(numbers, slots, candles, evaluator_for)

        compiled = self._evaluator.compiled
        return Routes(
            {
                key: Route(
                    self._plan,
                    key,
                    feed,
                    lambda rule: compiled(rule.condition),
                    self._portfolio.mark_setter,
                )
                for key in self._plan.aliases
            }
        )

    # -- state -------------------------------------------------------------------------------

    def export_state(self) -> EngineState:
        """Everything needed to continue elsewhere exactly as if never stopped."""
        return EngineState(
            version=STATE_VERSION,
            fingerprint=self._plan.fingerprint,
            portfolio=self._portfolio.export(),
            broker=self._broker.export(),
            slots=self._slots.export(),
            candles={alias: candle_to_json(c) for alias, c in self._candles.items()},
            last_candle_ms={str(k): ms for k, ms in self._routes.last_ms().items()},
            seen_epochs={str(i): e for i, e in self._watch.seen_epochs.items()},
            logged_once=self._events.export(),
            risk=self._guard.export(),
        )

    def _book(self, portfolio: Portfolio) -> tuple[Guard, PaperBroker]:
        guard = Guard(self.config, portfolio, self._events, self._clock)
        broker = PaperBroker(self.config, portfolio, self._journal, self._events, guard)
        guard.cancel_entries = broker.cancel_entries
        return guard, broker

    def _restore(self, state: EngineState) -> dict[CandleKey, int]:
        """Load `state`; the open time of the last candle per key (for the routes)."""
        self._portfolio = Portfolio.restore(state.portfolio)
        self._guard, self._broker = self._book(self._portfolio)
        self._broker.restore(state.broker)
        self._guard.restore(state.risk)
        self._evaluator = Evaluator(
            self._plan, self._slots, self._candles, self._portfolio, self._events
        )
        self._resolver = ActionResolver(
            self._plan, self._evaluator, self._portfolio, self.config.qty_step
        )
        self._events.restore(state.logged_once)
        if state.fingerprint != self._plan.fingerprint:
            # The rules changed: keep the book, start the evaluation cold.
            self._seen_epochs = {i: self._portfolio.epoch(i) for i in self._plan.streams}
            self._events.log(
                "the strategy changed since its state was saved: positions and orders restored,"
                " indicators start cold",
                level=LogLevel.WARNING,
            )
            return {}
        self._slots.restore(state.slots)
        for alias, data in state.candles.items():
            self._candles[alias] = candle_from_json(data)
        self._seen_epochs = {Instrument.parse(i): e for i, e in state.seen_epochs.items()}
        return {CandleKey.parse(k): ms for k, ms in state.last_candle_ms.items()}
