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

This module is the candle path: driving candles through the engine and running its rules. The
engine's parts and how they are built, saved and restored are in `EngineParts` (parts.py); what
a host does and reads between candles (flatten, halt, kill, the views) is in `EngineControls`
(controls.py). They are `StrategyEngine`'s bases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qkt.dsl.program import (
    CloseAction,
    CloseAllAction,
    CompiledAggregate,
    CompiledExpr,
    CompiledRule,
    LogAction,
    OrderAction,
)
from qkt.engine.actions import OcoRequest, Skip
from qkt.engine.controls import EngineControls
from qkt.engine.events import EngineEvent, LogLevel, SignalEvent
from qkt.engine.orders import Instrument
from qkt.engine.routes import Route
from qkt.engine.values import Value
from qkt.market.models import Candle


class StrategyEngine(EngineControls):
    """Runs one compiled strategy on closed candles against a paper broker."""

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
