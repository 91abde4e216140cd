"""`Guard`: the one place that says whether an order may be placed or filled, and that halts.

The paper broker asks `refuse` before it accepts an order (at its reference price) and again
before it fills one (at the fill price, fee included). Exits always pass: a stop, a take
profit, a CLOSE, a flatten or a liquidation only ever reduce a position. An order that opens
or increases a position is refused, in this order, when:
1. the strategy is halted;
2. the position it leaves would be worth more than `max_position_notional` (a breach: halt);
3. buying power says no (margin.py): not enough balance, or a spot sell without the position.
An entry that only reduces a position (a SELL no larger than the long) passes 1 and 2.

After every fill the guard measures the loss streak and the equity limits; the engine also
asks after each candle's marks move (`check_equity`) and counts each order a rule places
(`on_rule_order`). A breach halts at once: the halt is recorded, a `risk` event is reported and
the resting entries are cancelled (through `cancel_entries`, the broker's).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from qkt.engine.config import EngineConfig
from qkt.engine.events import EventBuffer, RiskEvent
from qkt.engine.halt import HaltInfo, HaltKind, NotHaltedError, outranks
from qkt.engine.margin import check_order
from qkt.engine.orders import Fill, Order, Side
from qkt.engine.portfolio import Portfolio
from qkt.engine.risk import DAY_MS, Breach, RiskMonitor
from qkt.money import CONTEXT, to_str

Clock = Callable[[], int]  # epoch ms now
_NEVER: Final = -(2**63)  # `quiet_until` before any day was counted


class Guard:
    """Halt state, limits and buying power of one strategy."""

    def __init__(
        self, config: EngineConfig, portfolio: Portfolio, events: EventBuffer, clock: Clock
    ) -> None:
        self._config = config
        self._portfolio = portfolio
        self._events = events
        self.clock = clock
        self.halted: HaltInfo | None = None
        self.monitor = RiskMonitor(config.limits, portfolio.equity)
        self.cancel_entries: Callable[[str, int], None] = lambda reason, ts: None
        # Before this time (by the clock) `tick` has nothing to do: the counted day's end.
        self.quiet_until = _NEVER

    # -- the broker's questions ----------------------------------------------------------------

    def refuse(self, order: Order, qty: Decimal, price: Decimal, fee: Decimal) -> str | None:
        """Why `order` may not fill `qty` at `price` paying `fee` (None: it may)."""
        if order.role.is_exit:
            return None
        instrument = order.instrument
        held = self._portfolio.position(instrument)
        signed = qty if order.side is Side.BUY else -qty
        after = CONTEXT.add(held, signed)
        reduces = held != 0 and (held > 0) != (signed > 0) and qty <= abs(held)
        if not reduces:
            if self.halted is not None:
                return f"halted ({self.halted.kind.value}): {self.halted.reason}"
            notional = CONTEXT.multiply(abs(after), price)
            breach = self.monitor.notional_breach(notional, self.clock())
            if breach is not None:
                self.trip(breach)
                return breach.reason
        return check_order(
            self._portfolio, self._config.margin, instrument, order.side, qty, price, fee
        )

    def on_fill(self, fill: Fill) -> None:
        """Measure the loss streak (a fill that reduced a position) and the equity limits."""
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        before = CONTEXT.subtract(fill.position, signed)
        if before != 0 and (before > 0) != (signed > 0):
            self._trip_if(self.monitor.on_closing_fill(fill.realized, self.clock()))
        self.check_equity()

    # -- the engine's ---------------------------------------------------------------------------

    def check_equity(self) -> None:
        """Daily loss and drawdown at the current marks."""
        limits = self._config.limits
        if limits.max_daily_loss is None and limits.max_drawdown_pct is None:
            return  # the common case, on every candle: skip valuing the book
        for breach in self.monitor.on_equity(self._portfolio.equity, self.clock()):
            self._trip_if(breach)

    def on_rule_order(self) -> None:
        """A rule is placing an order: count it against the order rate."""
        self._trip_if(self.monitor.on_order(self.clock()))

    def tick(self) -> None:
        """Start a new UTC day if the clock is in one, and lift a daily-loss halt then."""
        now = self.clock()
        if now < self.quiet_until:
            return
        if not self.monitor.is_new_day(now):
            return
        started = self.monitor.new_day(now, self._portfolio.equity)
        if self.monitor.day is not None:
            self.quiet_until = (self.monitor.day + 1) * DAY_MS
        if not started:
            return  # the first day counted: nothing began since a halt
        halt = self.halted
        if halt is not None and halt.kind.lifts_at_midnight:
            self.halted = None
            self._events.add(
                RiskEvent(now, "lift", halt.kind.value, "a new UTC day began", halt.by)
            )

    def trip(self, breach: Breach) -> None:
        """Halt for a breached limit: the record, a `risk` event, resting entries cancelled."""
        self.halt(breach.kind, breach.reason, "risk", breach=breach)

    def _trip_if(self, breach: Breach | None) -> None:
        if breach is not None and (self.halted is None or outranks(breach.kind, self.halted.kind)):
            self.trip(breach)

    def halt(
        self,
        kind: HaltKind,
        reason: str,
        by: str,
        *,
        killed: bool = False,
        breach: Breach | None = None,
    ) -> None:
        """Stop new entries and cancel the resting ones. A halt already in place keeps its
        record unless the new one outranks it (halt.py); the event is reported either way."""
        now = self.clock()
        current = self.halted
        if current is None or outranks(kind, current.kind) or killed:
            was_killed = current is not None and current.killed
            self.halted = HaltInfo(kind, reason, by, now, killed or was_killed)
        value = None if breach is None else to_str(breach.value)
        limit = None if breach is None else to_str(breach.limit)
        action = "kill" if killed else "halt"
        self._events.add(RiskEvent(now, action, kind.value, reason, by, value, limit))
        self.cancel_entries(f"halted: {reason}", self._events.now_ms)

    def resume(self, by: str) -> HaltInfo:
        """Lift the halt and measure every limit afresh from now; NotHaltedError if none."""
        halt = self.halted
        if halt is None:
            raise NotHaltedError("the strategy is not halted: nothing to resume")
        now = self.clock()
        self.halted = None
        self.monitor.rearm(self._portfolio.equity)
        self._events.add(RiskEvent(now, "resume", halt.kind.value, f"resumed by {by}", by))
        return halt

    def status(self, available: Decimal) -> dict[str, Any]:
        """The halt, the limits and the figures they are measured from, as JSON (money as exact
        strings); `available`: the balance new entries may use (margin.py)."""
        monitor, equity = self.monitor, self._portfolio.equity
        halt = self.halted
        return {
            "halted": halt is not None,
            "halt": None if halt is None else halt.to_json(),
            "limits": self._config.limits.to_json(),
            "equity": to_str(equity),
            "day_start_equity": to_str(monitor.day_start_equity),
            "daily_pnl": to_str(CONTEXT.subtract(equity, monitor.day_start_equity)),
            "peak_equity": to_str(monitor.peak_equity),
            "loss_streak": monitor.loss_streak,
            "orders_last_minute": monitor.orders_in_last_minute(self.clock()),
            "available": to_str(available),
        }

    # -- state ----------------------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """The halt and the monitor's figures, as JSON-able data."""
        return {
            "halt": None if self.halted is None else self.halted.to_json(),
            "monitor": self.monitor.export(),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load what `export` returned (an empty dict: a state from before halts existed)."""
        if not data:
            return
        halt = data.get("halt")
        self.halted = None if halt is None else HaltInfo.from_json(halt)
        self.monitor.restore(data["monitor"])
        self.quiet_until = _NEVER  # the restored day decides again
