"""`StrategyEngine`: the one object a worker drives. Candles in, events out; pure (no I/O, no
threads; time comes from candles, or from a clock the host injects for halts and risk limits).

When a candle of key K closes (dsl.md "When rules run"), for every alias reading K at once:
1. the candle becomes the aliases' latest; the symbol's mark moves to the latest close;
2. indicators rooted at those aliases update (an inner indicator before the one it feeds);
3. `@T-N` histories push; 4. aggregates update (`SINCE OPEN` only while a position is open);
5. if K is its symbol's finest stream, the symbol's resting orders are matched against the
   candle (liquidations, DAY expiry, market orders waiting for this open, resting orders): they
   fill *before* the rules, since the candle's range happened before its close; then the
   equity limits are checked (guard.py: a breach halts before the rules run);
6. the rules of those aliases run in file order. A rule fires only when its condition is exactly
   TRUE; a market order fills (at the close, by default) before the next rule, so later rules
   see the new position and account.
Position transitions (a fill that opens, closes or flips a position) are applied at once, after
the fill: `SINCE OPEN` state of the symbol's streams is emptied and `@open` snapshots capture the
LET's value at that moment (or clear when flat). `@buy`/`@sell` capture when a BUY/SELL rule of
that stream fires, before its order is placed.

A candle older than or equal to the last one of its key is ignored (each candle closes once),
so a restored engine can be fed an overlapping history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from qkt.dsl.program import (
    CloseAction,
    CloseAllAction,
    CompiledAggregate,
    CompiledCrosses,
    CompiledExpr,
    CompiledRule,
    LogAction,
    OrderAction,
    Program,
)
from qkt.dsl.summary import plain
from qkt.engine.actions import ActionResolver, OcoRequest, Skip
from qkt.engine.config import EngineConfig
from qkt.engine.evaluator import Evaluator
from qkt.engine.events import EngineEvent, EventBuffer, LogLevel, SignalEvent
from qkt.engine.feeding import Feeder, IndicatorSlot, feeders
from qkt.engine.guard import Guard
from qkt.engine.halt import HaltInfo, HaltKind, KillResult
from qkt.engine.margin import available
from qkt.engine.orders import Fill, Instrument, Order
from qkt.engine.paper import PaperBroker
from qkt.engine.plan import build_plan, walk
from qkt.engine.portfolio import Account, Portfolio, Position
from qkt.engine.protocols import Journal, NullJournal
from qkt.engine.risk import RiskMonitor
from qkt.engine.routes import Route, Routes
from qkt.engine.slots import SlotTable
from qkt.engine.state import STATE_VERSION, EngineState, candle_from_json, candle_to_json
from qkt.engine.transitions import PositionWatch
from qkt.engine.values import Value
from qkt.market.models import Candle, CandleKey


class StrategyEngine:
    """Runs one compiled strategy on closed candles against a paper broker."""

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

    # -- driving -----------------------------------------------------------------------------

    def on_candle(self, candle: Candle) -> list[EngineEvent]:
        """Process one closed candle; the events it caused, in order (fills already journaled)."""
        route = self._accept(candle)
        if route is None:
            return []
        self._close(candle, route)
        guard = self._guard
        if not self._own_clock or self._events.now_ms >= guard.quiet_until:
            guard.tick()  # after the marks: a day starts from the equity at its first close
        if route.finest:
            self._broker.on_candle(candle, route.instrument)
            self._watch.observe()
        self._guard.check_equity()
        evaluator = self._evaluator
        for rule, condition in route.rules:
            evaluator.rule, evaluator.scope = rule.index, "rule"
            if condition() is True:
                self._fire(rule, candle)
        return self._events.drain()

    def on_instant(self, candles: Sequence[Candle]) -> list[EngineEvent]:
        """Process every candle that closes at one instant as one step (a time barrier): all of
        them are applied first (marks, indicators, histories, resting orders, in key order), then
        the rules of their streams run in file order. Neither the order the candles arrive in nor
        the order their streams were declared in can change what a rule sees (a `CLOSE_ALL` on
        one symbol's rule closes the others at their closes of the same instant)."""
        accepted: list[tuple[Candle, Route]] = []
        for candle in sorted(candles, key=lambda c: (c.key.timeframe.ms, str(c.key))):
            route = self._accept(candle)
            if route is not None:
                self._close(candle, route)
                accepted.append((candle, route))
        for candle, route in accepted:
            if route.finest:
                self._broker.on_candle(candle, route.instrument)
                self._watch.observe()
        due = [(rule.index, rule, c, code) for c, r in accepted for rule, code in r.rules]
        for _, rule, candle, condition in sorted(due, key=lambda item: item[0]):
            self._run(rule, candle, condition)
        return self._events.drain()

    def warm_up(self, candle: Candle) -> list[EngineEvent]:
        """Process a historical candle without trading: indicators, histories, aggregates and
        CROSSES state advance (conditions are evaluated), but nothing fires and no order is
        matched. For the history a fresh worker replays before going live."""
        route = self._accept(candle)
        if route is not None:
            self._close(candle, route)
            for rule, condition in route.rules:
                self._evaluator.rule, self._evaluator.scope = rule.index, "rule"
                condition()
        return self._events.drain()

    def _accept(self, candle: Candle) -> Route | None:
        """The candle's route, or None if it is not newer than its key's last one."""
        route = self._routes.get(candle.key)
        if route is None:
            raise ValueError(f"{candle.key} is not a stream of strategy {self.program.name!r}")
        last, open_ms = route.last_open, candle.open_ms
        if last is not None and open_ms <= last:
            return None
        route.last_open = open_ms
        self._events.now_ms = open_ms + route.step_ms
        return route

    def _close(self, candle: Candle, route: Route) -> None:
        candles = self._candles
        for alias in route.aliases:
            candles[alias] = candle
        if route.sole:
            route.mark(candle.close)
        else:
            latest = max(
                (candles[a] for a in self._plan.streams[route.instrument] if a in candles),
                key=lambda c: c.end_ms,
            )
            self._portfolio.mark(route.instrument, latest.close)
        for feed in route.feeders:
            feed()
        for lag in route.lags:
            self._slots.lags[lag.slot].push(self._value_in_slot(lag.slot, lag.value))
        for agg in route.aggregates:
            self._push_aggregate(agg)

    def _push_aggregate(self, node: CompiledAggregate) -> None:
        if node.window is not None:
            self._slots.windows[node.slot].push(self._value_in_slot(node.slot, node.operand))
        elif self._portfolio.position(self._plan.instruments[node.stream]) != 0:
            self._slots.since_open[node.slot].push(self._value_in_slot(node.slot, node.operand))

    def _value_in_slot(self, slot: int, expr: CompiledExpr) -> Value:
        """Evaluate outside any rule (warnings are logged once per slot)."""
        evaluator = self._evaluator
        saved = evaluator.rule, evaluator.scope
        evaluator.rule, evaluator.scope = None, f"slot {slot}"
        try:
            return evaluator.value(expr)
        finally:
            evaluator.rule, evaluator.scope = saved

    # -- rules -------------------------------------------------------------------------------

    def _run(self, rule: CompiledRule, candle: Candle, condition: Callable[[], Value]) -> None:
        evaluator = self._evaluator
        evaluator.rule, evaluator.scope = rule.index, "rule"
        if condition() is True:
            self._fire(rule, candle)

    def _fire(self, rule: CompiledRule, candle: Candle) -> None:
        """A rule's condition is TRUE: its signal, then its action."""
        signal = SignalEvent(
            ts=candle.end_ms,
            candle_ms=candle.open_ms,
            rule=rule.index,
            text=rule.text,
            stream=rule.stream,
            line=rule.span.line,
        )
        self._journal.record_signal(signal)
        self._events.add(signal)
        action = rule.action
        if isinstance(action, OrderAction):
            self._watch.capture(action.side, action.stream)
            self._place(action, rule)
        elif isinstance(action, CloseAction):
            self._close_position(self._plan.instruments[action.stream], rule)
        elif isinstance(action, CloseAllAction):
            for instrument in sorted(self._plan.finest):
                self._close_position(instrument, rule)
        elif isinstance(action, LogAction):
            self._events.log(action.text, level=LogLevel.INFO, rule=rule.index)
        self._watch.observe()

    def _place(self, action: OrderAction, rule: CompiledRule) -> None:
        latest = self._candles.get(action.stream)
        if latest is None:  # only if a rule's stream is not its action's (the compiler's job)
            self._events.warn_once(
                "price", f"no candle of {action.stream} yet; skipped", rule=rule.index
            )
            return
        price = latest.close
        now = self._events.now_ms
        resolved = self._resolver.resolve(action, rule.index, price)
        if isinstance(resolved, Skip):
            self._events.warn_once(resolved.key, resolved.message, rule=rule.index)
            return
        self._guard.on_rule_order()
        if isinstance(resolved, OcoRequest):
            self._broker.place_oco(resolved.request, resolved.stop, resolved.limit, now)
        else:
            self._broker.place(resolved, price, now)

    def _close_position(self, instrument: Instrument, rule: CompiledRule) -> None:
        price = self._portfolio.mark_of(instrument)
        if price is None:  # no candle of it yet: nothing can be held in it either
            return
        if self._portfolio.position(instrument) != 0:
            self._guard.on_rule_order()
        self._broker.close(instrument, price, self._events.now_ms, rule.index)

    def flatten(self, now_ms: int | None = None) -> list[EngineEvent]:
        """Close every position at market, as a `CLOSE_ALL` outside any rule (a worker's stop
        with flatten); the events it caused, fills already journaled. `now_ms` (wall time) dates
        the fills if it is later than the last candle's close."""
        if now_ms is not None:
            self._events.now_ms = max(self._events.now_ms, now_ms)
        for instrument in sorted(self._plan.finest):
            price = self._portfolio.mark_of(instrument)
            if price is not None:
                self._broker.close(instrument, price, self._events.now_ms, None)
        self._watch.observe()
        return self._events.drain()

    # -- halt, resume, kill (halt.py, guard.py) ------------------------------------------------

    def halt(
        self, reason: str, by: str = "operator", *, kind: HaltKind = HaltKind.OPERATOR
    ) -> list[EngineEvent]:
        """Stop new entries (exits still run) and cancel resting entry orders; the events it
        caused. `kind` is OPERATOR, or the daemon-wide limit that halts every strategy."""
        self._guard.halt(kind, reason, by)
        return self._events.drain()

    def resume(self, by: str = "operator") -> list[EngineEvent]:
        """Lift the halt and measure every limit afresh from now (the day's equity and the
        peak become the current equity); NotHaltedError if the strategy is not halted."""
        self._guard.resume(by)
        return self._events.drain()

    def kill(
        self, flatten: bool = False, reason: str = "killed", by: str = "operator"
    ) -> KillResult:
        """Halt, cancel every order (exits too), and with `flatten` close every position at
        market (a symbol with no price yet cannot be closed); the positions left."""
        self._guard.halt(HaltKind.OPERATOR, reason, by, killed=True)
        self._broker.cancel_all(f"killed: {reason}", self._events.now_ms)
        events = self._events.drain()
        if flatten:
            events += self.flatten(self._clock())
        return KillResult(events, self.positions)

    def tick(self) -> list[EngineEvent]:
        """Let time pass without a candle: at 00:00 UTC (by the clock) a new day's loss count
        starts and a daily-loss halt lifts. `on_candle` does this itself."""
        self._guard.tick()
        return self._events.drain()

    @property
    def halt_info(self) -> HaltInfo | None:
        """Why the strategy is halted (None: it is not)."""
        return self._guard.halted

    @property
    def risk(self) -> RiskMonitor:
        """The figures the limits are measured from (day's starting equity, peak, streak)."""
        return self._guard.monitor

    def risk_status(self) -> dict[str, Any]:
        """The halt, the limits and the figures they are measured from, as JSON (money as exact
        strings): for `/status`, and for the daemon's daemon-wide limits."""
        return self._guard.status(self.available)

    # -- views -------------------------------------------------------------------------------

    def value_of(self, expr: CompiledExpr) -> Value:
        """The value of `expr` now, as a rule would see it (for inspection and tests). Refuses
        expressions holding a CROSSES: evaluating one advances its state."""
        if any(isinstance(node, CompiledCrosses) for node in walk(expr)):
            raise ValueError("value_of cannot evaluate CROSSES: that would advance its state")
        return self._value_in_slot(-1, expr)

    @property
    def account(self) -> Account:
        """Balance, equity, realized / unrealized / total PnL and fees, now."""
        return self._portfolio.account()

    @property
    def available(self) -> Decimal:
        """Balance not held as margin by open positions: what new entries may use (margin.py)."""
        return available(self._portfolio, self.config.margin)

    @property
    def positions(self) -> tuple[Position, ...]:
        """Open positions, marked at their symbols' latest closes."""
        return self._portfolio.positions()

    @property
    def open_orders(self) -> tuple[Order, ...]:
        """Resting orders (and market orders waiting for the next open)."""
        return self._broker.open_orders

    @property
    def trade_count(self) -> int:
        """Fills so far."""
        return self._broker.trade_count

    @property
    def last_trade(self) -> Fill | None:
        """The latest fill, if any."""
        return self._broker.last_trade

    @property
    def warm(self) -> bool:
        """Every indicator of the strategy has a value."""
        return self._slots.warm

    @property
    def indicators(self) -> dict[str, Decimal | None]:
        """Each indicator's latest value (None until warm) by its text, `EMA(btc.close, 50)`;
        a call written twice is one indicator. What a trader checks a chart against."""
        if self._indicator_texts is None:  # rendered at the first ask, not at every /status
            slots = self._slots.indicators
            # By number: an inner indicator before the one it feeds.
            self._indicator_texts = [(plain(slots[n].node), slots[n]) for n in sorted(slots)]
        return {
            text: slot.value if isinstance(slot.value, Decimal) else None
            for text, slot in self._indicator_texts
        }

    @property
    def last_candle_ms(self) -> dict[CandleKey, int]:
        """Open time (epoch ms) of the last candle processed, per key."""
        return self._routes.last_ms()

    def status(self) -> dict[str, Any]:
        """The engine's part of the worker's `/status` (money as exact decimal strings)."""
        account = self.account.to_json()
        return {
            **account,
            "positions": [position.to_json() for position in self.positions],
            "open_orders": [order.to_json() for order in self.open_orders],
            "trades": self.trade_count,
            "last_trade": None if self.last_trade is None else self.last_trade.to_json(),
            "last_candle_ts": {str(k): ms for k, ms in self._routes.last_ms().items()},
            "warm": self.warm,
        }

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
