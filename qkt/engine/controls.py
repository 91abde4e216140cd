"""`EngineControls`: what a host does to a running engine between candles, and what it reads.

It flattens, halts, resumes, kills and lets time pass (`tick`), and it reads the account,
positions, open orders, trades, indicators, an expression's value, the risk figures and the
`/status` summary. None of it is on the candle path, which is `StrategyEngine`'s (strategy.py);
this is the base it builds on, over the engine's parts (parts.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from qkt.dsl.program import CompiledCrosses, CompiledExpr
from qkt.dsl.summary import plain
from qkt.engine.events import EngineEvent
from qkt.engine.halt import HaltInfo, HaltKind, KillResult
from qkt.engine.margin import available
from qkt.engine.orders import Fill, Order
from qkt.engine.parts import EngineParts
from qkt.engine.plan import walk
from qkt.engine.portfolio import Account, Position
from qkt.engine.risk import RiskMonitor
from qkt.engine.values import Value
from qkt.market.models import CandleKey


class EngineControls(EngineParts):
    """A strategy engine's controls and views outside the candle path (the base of
    `StrategyEngine`)."""

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
