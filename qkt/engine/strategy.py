"""`StrategyEngine`: the one object a worker drives. Candles in, events out; pure (no I/O, no
threads, no clock: time comes from candles).

When a candle of key K closes (dsl.md "When rules run"), for every alias reading K at once:
1. the candle becomes the aliases' latest; the symbol's mark moves to the latest close;
2. indicators rooted at those aliases update (an inner indicator before the one it feeds);
3. `@T-N` histories push; 4. aggregates update (`SINCE OPEN` only while a position is open);
5. if K is its symbol's finest stream, the symbol's resting orders are matched against the
   candle (DAY expiry, then market orders waiting for this open, then resting orders): they
   fill *before* the rules, since the candle's range happened before its close;
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

from collections.abc import Sequence
from typing import Any

from qkt.dsl.program import (
    Aggregate,
    CandleRef,
    CloseAction,
    CloseAllAction,
    Crosses,
    Expr,
    FieldRef,
    IndicatorCall,
    LogAction,
    OrderAction,
    Program,
    Rule,
    Snapshot,
)
from qkt.engine.actions import ActionResolver, OcoRequest, Skip
from qkt.engine.config import EngineConfig
from qkt.engine.evaluator import Evaluator
from qkt.engine.events import EngineEvent, EventBuffer, LogLevel, SignalEvent
from qkt.engine.orders import Fill, Instrument, Order
from qkt.engine.paper import PaperBroker
from qkt.engine.plan import build_plan, walk
from qkt.engine.portfolio import Account, Portfolio, Position
from qkt.engine.protocols import Journal, NullJournal
from qkt.engine.slots import SlotTable
from qkt.engine.state import STATE_VERSION, EngineState, candle_from_json, candle_to_json
from qkt.engine.values import UNDEFINED, Value
from qkt.market.models import Candle, CandleKey


class StrategyEngine:
    """Runs one compiled strategy on closed candles against a paper broker."""

    def __init__(
        self,
        program: Program,
        config: EngineConfig | None = None,
        journal: Journal | None = None,
        state: EngineState | None = None,
    ) -> None:
        self.program = program
        self.config = config or EngineConfig()
        self._journal: Journal = journal or NullJournal()
        self._plan = build_plan(program)
        self._events = EventBuffer()
        self._portfolio = Portfolio(self.config.balance)
        self._slots = SlotTable(self._plan)
        self._candles: dict[str, Candle] = {}  # alias -> its latest closed candle
        self._last_ms: dict[CandleKey, int] = {}  # key -> open time of its last candle
        self._seen_epochs: dict[Instrument, int] = {}
        self._broker = PaperBroker(self.config, self._portfolio, self._journal, self._events)
        self._evaluator = Evaluator(
            self._plan, self._slots, self._candles, self._portfolio, self._events
        )
        self._resolver = ActionResolver(
            self._plan, self._evaluator, self._portfolio, self.config.qty_step
        )
        if state is not None:
            self._restore(state)

    # -- driving -----------------------------------------------------------------------------

    def on_candle(self, candle: Candle) -> list[EngineEvent]:
        """Process one closed candle; the events it caused, in order (fills already journaled)."""
        aliases = self._accept(candle)
        if not aliases:
            return []
        self._close(candle, aliases)
        instrument = Instrument.of(candle.key)
        if self._plan.finest[instrument] == candle.key:
            self._broker.on_candle(candle)
            self._observe_positions()
        for rule in self._plan.rules[candle.key]:
            self._run(rule, candle)
        return self._events.drain()

    def on_instant(self, candles: Sequence[Candle]) -> list[EngineEvent]:
        """Process every candle that closes at one instant as one step (a time barrier): all of
        them are applied first (marks, indicators, histories, resting orders, in key order), then
        the rules of their streams run in file order. Neither the order the candles arrive in nor
        the order their streams were declared in can change what a rule sees (a `CLOSE_ALL` on
        one symbol's rule closes the others at their closes of the same instant)."""
        accepted = []
        for candle in sorted(candles, key=lambda c: (c.key.timeframe.ms, str(c.key))):
            aliases = self._accept(candle)
            if aliases:
                self._close(candle, aliases)
                accepted.append(candle)
        for candle in accepted:
            if self._plan.finest[Instrument.of(candle.key)] == candle.key:
                self._broker.on_candle(candle)
                self._observe_positions()
        due = [(rule.index, rule, c) for c in accepted for rule in self._plan.rules[c.key]]
        for _, rule, candle in sorted(due, key=lambda item: item[0]):
            self._run(rule, candle)
        return self._events.drain()

    def warm_up(self, candle: Candle) -> list[EngineEvent]:
        """Process a historical candle without trading: indicators, histories, aggregates and
        CROSSES state advance (conditions are evaluated), but nothing fires and no order is
        matched. For the history a fresh worker replays before going live."""
        aliases = self._accept(candle)
        if aliases:
            self._close(candle, aliases)
            for rule in self._plan.rules[candle.key]:
                self._evaluator.rule, self._evaluator.scope = rule.index, "rule"
                self._evaluator.value(rule.condition)
        return self._events.drain()

    def _accept(self, candle: Candle) -> tuple[str, ...]:
        aliases = self._plan.aliases.get(candle.key)
        if aliases is None:
            raise ValueError(f"{candle.key} is not a stream of strategy {self.program.name!r}")
        last = self._last_ms.get(candle.key)
        if last is not None and candle.open_ms <= last:
            return ()
        self._last_ms[candle.key] = candle.open_ms
        self._events.now_ms = candle.end_ms
        return aliases

    def _close(self, candle: Candle, aliases: tuple[str, ...]) -> None:
        for alias in aliases:
            self._candles[alias] = candle
        instrument = Instrument.of(candle.key)
        latest = max(
            (self._candles[a] for a in self._plan.streams[instrument] if a in self._candles),
            key=lambda c: c.end_ms,
        )
        self._portfolio.mark(instrument, latest.close)
        for alias in aliases:
            for node in self._plan.indicators.get(alias, ()):
                self._feed(node)
        for alias in aliases:
            for lag in self._plan.lags.get(alias, ()):
                self._slots.lags[lag.slot].push(self._value_in_slot(lag.slot, lag.value))
        for alias in aliases:
            for agg in self._plan.aggregates.get(alias, ()):
                self._push_aggregate(agg)

    def _feed(self, node: IndicatorCall) -> None:
        slot = self._slots.indicators[node.slot]
        source = node.source
        if isinstance(source, FieldRef):  # the common case, without the evaluator
            slot.feed(float(getattr(self._candles[source.stream], source.field)))
        elif isinstance(source, CandleRef):
            bar = self._candles[source.stream]
            slot.feed_bar(float(bar.high), float(bar.low), float(bar.close))
        elif isinstance(source, IndicatorCall):
            inner = self._slots.indicators[source.slot].indicator.value
            if inner is not None:  # fed each defined value of the inner indicator
                slot.feed(inner)
        else:
            value = self._value_in_slot(node.slot, source)
            if value is not UNDEFINED and not isinstance(value, bool):
                slot.feed(float(value))

    def _push_aggregate(self, node: Aggregate) -> None:
        if node.window is not None:
            self._slots.windows[node.slot].push(self._value_in_slot(node.slot, node.operand))
        elif self._portfolio.position(self._plan.instruments[node.stream]) != 0:
            self._slots.since_open[node.slot].push(self._value_in_slot(node.slot, node.operand))

    def _value_in_slot(self, slot: int, expr: Expr) -> Value:
        """Evaluate outside any rule (warnings are logged once per slot)."""
        evaluator = self._evaluator
        saved = evaluator.rule, evaluator.scope
        evaluator.rule, evaluator.scope = None, f"slot {slot}"
        try:
            return evaluator.value(expr)
        finally:
            evaluator.rule, evaluator.scope = saved

    # -- rules -------------------------------------------------------------------------------

    def _run(self, rule: Rule, candle: Candle) -> None:
        self._evaluator.rule, self._evaluator.scope = rule.index, "rule"
        if not self._evaluator.is_true(rule.condition):
            return
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
            self._capture(action.side, action.stream)
            self._place(action, rule)
        elif isinstance(action, CloseAction):
            self._close_position(self._plan.instruments[action.stream], rule)
        elif isinstance(action, CloseAllAction):
            for instrument in sorted(self._plan.finest):
                self._close_position(instrument, rule)
        elif isinstance(action, LogAction):
            self._events.log(action.text, level=LogLevel.INFO, rule=rule.index)
        self._observe_positions()

    def _place(self, action: OrderAction, rule: Rule) -> None:
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
        elif isinstance(resolved, OcoRequest):
            self._broker.place_oco(resolved.request, resolved.stop, resolved.limit, now)
        else:
            self._broker.place(resolved, price, now)

    def _close_position(self, instrument: Instrument, rule: Rule) -> None:
        price = self._portfolio.mark_of(instrument)
        if price is None:  # no candle of it yet: nothing can be held in it either
            return
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
        self._observe_positions()
        return self._events.drain()

    def _capture(self, side: str, stream: str) -> None:
        for node in self._plan.stateful.values():
            if isinstance(node, Snapshot) and node.kind == side and node.stream == stream:
                self._slots.captured[node.slot] = self._evaluator.value(node.value)

    def _observe_positions(self) -> None:
        """Apply transitions: empty `SINCE OPEN`, capture or clear `@open`."""
        for instrument, streams in self._plan.streams.items():
            epoch = self._portfolio.epoch(instrument)
            if epoch == self._seen_epochs.get(instrument, 0):
                continue
            self._seen_epochs[instrument] = epoch
            is_open = self._portfolio.position(instrument) != 0
            for node in self._plan.stateful.values():
                if getattr(node, "stream", None) not in streams:
                    continue
                if isinstance(node, Aggregate) and node.window is None:
                    self._slots.since_open[node.slot].reset()
                elif isinstance(node, Snapshot) and node.kind == "OPEN":
                    value = self._value_in_slot(node.slot, node.value) if is_open else UNDEFINED
                    self._slots.captured[node.slot] = value

    # -- views -------------------------------------------------------------------------------

    def value_of(self, expr: Expr) -> Value:
        """The value of `expr` now, as a rule would see it (for inspection and tests). Refuses
        expressions holding a CROSSES: evaluating one advances its state."""
        if any(isinstance(node, Crosses) for node in walk(expr)):
            raise ValueError("value_of cannot evaluate CROSSES: that would advance its state")
        return self._value_in_slot(-1, expr)

    @property
    def account(self) -> Account:
        """Balance, equity, realized / unrealized / total PnL and fees, now."""
        return self._portfolio.account()

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
    def last_candle_ms(self) -> dict[CandleKey, int]:
        """Open time (epoch ms) of the last candle processed, per key."""
        return dict(self._last_ms)

    def status(self) -> dict[str, Any]:
        """The engine's part of the worker's `/status` (money as exact decimal strings)."""
        account = self.account.to_json()
        return {
            **account,
            "positions": [position.to_json() for position in self.positions],
            "open_orders": [order.to_json() for order in self.open_orders],
            "trades": self.trade_count,
            "last_trade": None if self.last_trade is None else self.last_trade.to_json(),
            "last_candle_ts": {str(k): ms for k, ms in self._last_ms.items()},
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
            last_candle_ms={str(k): ms for k, ms in self._last_ms.items()},
            seen_epochs={str(i): e for i, e in self._seen_epochs.items()},
            logged_once=self._events.export(),
        )

    def _restore(self, state: EngineState) -> None:
        self._portfolio = Portfolio.restore(state.portfolio)
        self._broker = PaperBroker(self.config, self._portfolio, self._journal, self._events)
        self._broker.restore(state.broker)
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
            return
        self._slots.restore(state.slots)
        for alias, data in state.candles.items():
            self._candles[alias] = candle_from_json(data)
        self._last_ms = {CandleKey.parse(k): ms for k, ms in state.last_candle_ms.items()}
        self._seen_epochs = {Instrument.parse(i): e for i, e in state.seen_epochs.items()}
