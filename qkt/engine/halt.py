"""The halt record: who or what stopped a strategy's entries, why and when.

A halted strategy opens or increases no position: exits (CLOSE, brackets, stops, OCO,
FLATTEN, liquidations) still run. The record is part of `EngineState`, so a halt survives a
worker restart and a daemon restart. `HaltKind` says what halted it: the operator, or the
limit that was breached. Daily-loss halts (per strategy or daemon-wide) lift by themselves at
the next 00:00 UTC; every other halt stays until `resume`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from qkt.engine.events import EngineEvent
from qkt.engine.portfolio import Position
from qkt.errors import ConflictError


class HaltKind(Enum):
    """What halted a strategy: the operator, or the limit breached (named as the flag is)."""

    OPERATOR = "operator"
    MAX_DAILY_LOSS = "max_daily_loss"
    MAX_DRAWDOWN_PCT = "max_drawdown_pct"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_ORDERS_PER_MINUTE = "max_orders_per_minute"
    MAX_LOSS_STREAK = "max_loss_streak"
    PORTFOLIO_DAILY_LOSS = "portfolio_daily_loss"  # the daemon-wide sum of daily losses
    PORTFOLIO_DRAWDOWN_PCT = "portfolio_drawdown_pct"  # the daemon-wide summed equity

    @property
    def lifts_at_midnight(self) -> bool:
        """A daily-loss halt lifts at the next 00:00 UTC; the others wait for `resume`."""
        return self in (HaltKind.MAX_DAILY_LOSS, HaltKind.PORTFOLIO_DAILY_LOSS)

    @property
    def is_limit(self) -> bool:
        """A breached limit, not an operator's decision."""
        return self is not HaltKind.OPERATOR


class NotHaltedError(ConflictError):
    """`resume` of a strategy that is not halted."""

    code = "not_halted"


@dataclass(frozen=True, slots=True)
class HaltInfo:
    """Why a strategy is halted. `by` is who asked: "operator", "risk" (its own limits),
    "daemon" (daemon-wide limits) or any name the caller gives."""

    kind: HaltKind
    reason: str
    by: str
    since_ms: int  # epoch ms, by the engine's clock
    killed: bool = False  # halted by `kill`: every order was cancelled as well

    def to_json(self) -> dict[str, Any]:
        """As JSON (times in epoch ms)."""
        return {
            "kind": self.kind.value,
            "reason": self.reason,
            "by": self.by,
            "since_ms": self.since_ms,
            "killed": self.killed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HaltInfo:
        """Load what `to_json` wrote."""
        return cls(
            kind=HaltKind(data["kind"]),
            reason=str(data["reason"]),
            by=str(data["by"]),
            since_ms=int(data["since_ms"]),
            killed=bool(data.get("killed", False)),
        )


@dataclass(frozen=True, slots=True)
class KillResult:
    """What `StrategyEngine.kill` did: the events it caused and the positions left open (none
    when flattened, unless a symbol has no price yet)."""

    events: list[EngineEvent]
    positions: tuple[Position, ...]


def outranks(new: HaltKind, old: HaltKind) -> bool:
    """Whether a new halt's record replaces the current one. The operator's word always does
    (it says why now); a limit never replaces the operator's halt, and a halt that needs
    `resume` is never downgraded to one that lifts by itself at midnight."""
    if new is HaltKind.OPERATOR:
        return True
    if old is HaltKind.OPERATOR:
        return False
    return old.lifts_at_midnight and not new.lifts_at_midnight
