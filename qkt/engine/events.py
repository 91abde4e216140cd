"""What `StrategyEngine.on_candle` reports: trades, signals, order changes and log lines.

Each event renders with `to_json()` (money as exact decimal strings, times as epoch ms) under a
`type` that matches the worker's SSE event names (`trade`, `signal`, `log`) plus `order`,
`order_rejected` (an order refused: buying power, a halt, a limit) and `risk` (a halt, a resume,
a kill, a breached limit).
`EventBuffer` collects one candle's events and implements "logged once": a warning keyed by
(rule, what) is reported the first time only, for the life of the strategy (it survives a
restore), so a rule that divides by zero on every candle does not flood the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, TypeAlias

from qkt.engine.orders import Fill, Order


class LogLevel(Enum):
    """How loud a log line is."""

    INFO = "INFO"
    WARNING = "WARNING"


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """A fill (already in the journal when this is reported)."""

    type: ClassVar[str] = "trade"
    fill: Fill

    @property
    def ts(self) -> int:
        """The fill's time, epoch ms."""
        return self.fill.ts

    def to_json(self) -> dict[str, Any]:
        """The event as JSON (money as exact strings, times in epoch ms)."""
        return {"type": self.type, **self.fill.to_json()}


@dataclass(frozen=True, slots=True)
class SignalEvent:
    """A rule fired: its condition was exactly TRUE at the close of `stream`'s candle."""

    type: ClassVar[str] = "signal"
    ts: int  # the candle's close time (its end), epoch ms
    candle_ms: int  # the candle's open time, epoch ms
    rule: int
    text: str
    stream: str
    line: int

    def to_json(self) -> dict[str, Any]:
        """The event as JSON (money as exact strings, times in epoch ms)."""
        return {
            "type": self.type,
            "ts": self.ts,
            "candle_ms": self.candle_ms,
            "rule": self.rule,
            "text": self.text,
            "stream": self.stream,
            "line": self.line,
        }


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order was placed, changed (a stop-limit triggered) or reached a final status."""

    type: ClassVar[str] = "order"
    ts: int
    order: Order
    reason: str  # why, in a few words: "placed", "filled", "oco", "position closed", ...

    def to_json(self) -> dict[str, Any]:
        """The event as JSON (money as exact strings, times in epoch ms)."""
        return {"type": self.type, "ts": self.ts, "reason": self.reason, **self.order.to_json()}


@dataclass(frozen=True, slots=True)
class LogEvent:
    """A line for the strategy's log: a `LOG` action (INFO) or an engine warning."""

    type: ClassVar[str] = "log"
    ts: int
    level: LogLevel
    message: str
    rule: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The event as JSON (money as exact strings, times in epoch ms)."""
        return {
            "type": self.type,
            "ts": self.ts,
            "level": self.level.value,
            "message": self.message,
            "rule": self.rule,
        }


@dataclass(frozen=True, slots=True)
class OrderRejectedEvent:
    """An order refused before it could fill (its status is REJECTED, already journaled)."""

    type: ClassVar[str] = "order_rejected"
    ts: int
    order: Order
    reason: str  # a sentence: "insufficient balance: needs 60006, available 100"

    def to_json(self) -> dict[str, Any]:
        """The event as JSON (money as exact strings, times in epoch ms)."""
        return {"type": self.type, "ts": self.ts, "reason": self.reason, **self.order.to_json()}


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """A halt, a resume, a kill, or the daily-loss halt lifting at 00:00 UTC.

    `action` is "halt", "resume", "kill" or "lift"; `kind` is a `HaltKind` value ("operator" or
    the limit's name); for a breach, `value` and `limit` are the figure and its limit as exact
    strings (percent for drawdowns, counts for rates and streaks)."""

    type: ClassVar[str] = "risk"
    ts: int
    action: str
    kind: str
    reason: str
    by: str
    value: str | None = None
    limit: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The event as JSON (times in epoch ms)."""
        return {
            "type": self.type,
            "ts": self.ts,
            "action": self.action,
            "kind": self.kind,
            "reason": self.reason,
            "by": self.by,
            "value": self.value,
            "limit": self.limit,
        }


EngineEvent: TypeAlias = (
    TradeEvent | SignalEvent | OrderEvent | LogEvent | OrderRejectedEvent | RiskEvent
)


class EventBuffer:
    """Collects the events of the candle being processed, in order."""

    def __init__(self) -> None:
        self.now_ms = 0  # the time of what is being processed: the candle's close
        self._events: list[EngineEvent] = []
        self._once: set[str] = set()

    def add(self, event: EngineEvent) -> None:
        """Append an event."""
        self._events.append(event)

    def log(
        self, message: str, *, level: LogLevel = LogLevel.INFO, rule: int | None = None
    ) -> None:
        """A log line now."""
        self._events.append(LogEvent(self.now_ms, level, message, rule))

    def warn_once(self, key: str, message: str, *, rule: int | None) -> None:
        """A warning the first time `(rule, key)` happens; silence afterwards."""
        full_key = f"{rule}:{key}"
        if full_key in self._once:
            return
        self._once.add(full_key)
        where = "" if rule is None else f"rule {rule}: "
        self.log(f"{where}{message} (logged once)", level=LogLevel.WARNING, rule=rule)

    def drain(self) -> list[EngineEvent]:
        """The events collected so far; the buffer starts empty again."""
        events, self._events = self._events, []
        return events

    def export(self) -> list[str]:
        """The "logged once" keys already used."""
        return sorted(self._once)

    def restore(self, once: list[str]) -> None:
        """Load what `export` returned."""
        self._once = set(once)
