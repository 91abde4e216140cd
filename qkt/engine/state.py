"""`EngineState`: everything a restarted strategy needs to continue as if it never stopped.

It is plain JSON-able data (`to_json` / `from_json`, money and prices as exact decimal strings,
indicator internals as floats, which JSON round-trips exactly) with a `version` field. It holds:
- the book: positions, average prices, realized PnL and fees, the starting balance, the trade
  count and last trade, and every open order (resting entries with their bracket plans, bracket /
  OCO / trailing exits with their trailing anchors, market orders waiting for the next open);
- the risk: the halt record (who or what halted it, why, when) and what the limits are
  measured from (the day's starting equity, the peak, the loss streak, recent orders); a state
  saved before halts existed has none and loads as not halted;
- the evaluation: every slot (indicators, CROSSES, aggregates, snapshots), the latest candle of
  each stream and the last candle time per key (so a candle seen before is not replayed).

`fingerprint` identifies the program's streams and rules. Restoring into a program whose rules
changed keeps the book (positions and stops survive an edit) and starts the evaluation cold.
The starting balance in the state wins over the run's configuration: an account keeps its base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from qkt.errors import UserError
from qkt.market.models import Candle, CandleKey

STATE_VERSION: Final = 1


class StateError(UserError):
    """A saved engine state that cannot be loaded (unknown version, missing fields)."""

    code = "bad_engine_state"


@dataclass(frozen=True, slots=True)
class EngineState:
    """A snapshot of a `StrategyEngine`; see the module docstring for what it holds."""

    version: int
    fingerprint: str
    portfolio: dict[str, Any]
    broker: dict[str, Any]
    slots: dict[str, Any]
    candles: dict[str, dict[str, Any]]  # alias -> its latest candle
    last_candle_ms: dict[str, int]  # candle key -> open time of the last candle processed
    seen_epochs: dict[str, int]  # instrument -> position epoch already observed
    logged_once: list[str]
    risk: dict[str, Any] = field(default_factory=dict)  # halt record and limit figures

    def to_json(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        return {
            "version": self.version,
            "fingerprint": self.fingerprint,
            "portfolio": self.portfolio,
            "broker": self.broker,
            "slots": self.slots,
            "candles": self.candles,
            "last_candle_ms": self.last_candle_ms,
            "seen_epochs": self.seen_epochs,
            "logged_once": self.logged_once,
            "risk": self.risk,
        }

    @classmethod
    def from_json(cls, data: Any) -> EngineState:
        """Load what `to_json` wrote; StateError if it is not a state this version can read."""
        if not isinstance(data, dict):
            raise StateError("an engine state must be a JSON object")
        version = data.get("version")
        if version != STATE_VERSION:
            raise StateError(
                f"engine state version {version!r} is not supported (expected {STATE_VERSION})"
            )
        try:
            return cls(
                version=version,
                fingerprint=str(data["fingerprint"]),
                portfolio=dict(data["portfolio"]),
                broker=dict(data["broker"]),
                slots=dict(data["slots"]),
                candles=dict(data["candles"]),
                last_candle_ms={str(k): int(v) for k, v in data["last_candle_ms"].items()},
                seen_epochs={str(k): int(v) for k, v in data["seen_epochs"].items()},
                logged_once=[str(k) for k in data["logged_once"]],
                risk=dict(data.get("risk") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise StateError(f"engine state is incomplete or malformed: {error!r}") from None


def candle_to_json(candle: Candle) -> dict[str, Any]:
    """A candle as JSON: its key as `BROKER:SYMBOL:TF`, prices as exact decimal strings."""
    return {
        "key": str(candle.key),
        "open_ms": candle.open_ms,
        "open": str(candle.open),
        "high": str(candle.high),
        "low": str(candle.low),
        "close": str(candle.close),
        "volume": str(candle.volume),
    }


def candle_from_json(data: dict[str, Any]) -> Candle:
    """The inverse of `candle_to_json`."""
    return Candle(
        key=CandleKey.parse(data["key"]),
        open_ms=int(data["open_ms"]),
        open=Decimal(data["open"]),
        high=Decimal(data["high"]),
        low=Decimal(data["low"]),
        close=Decimal(data["close"]),
        volume=Decimal(data["volume"]),
    )
