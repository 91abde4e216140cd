"""The paper broker's values: instruments, orders, exit plans and fills (Decimal, epoch ms).

An `Order` is immutable; the broker replaces it (`dataclasses.replace`) when its state moves
(a trailing anchor, a triggered stop-limit, a final status). Every value renders to JSON with
money as exact decimal strings and times as epoch milliseconds, and the state-carrying ones
(`Order`, `Fill`) also load back from that JSON (`from_json`), for `EngineState`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Final, Literal

from qkt.dsl.program import TimeInForce
from qkt.market.models import CandleKey
from qkt.money import to_str


class Side(Enum):
    """Which way an order trades."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """The other side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderKind(Enum):
    """How an order fills (matching.py has the rules)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING = "TRAILING"


class OrderStatus(Enum):
    """Where an order is in its life."""

    OPEN = "OPEN"  # resting, or (market, fill-at-next-open) waiting for the next candle
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"  # refused before filling: buying power, a halt, a risk limit
    EXPIRED = "EXPIRED"


class OrderRole(Enum):
    """Why an order exists. Every role but ENTRY is an exit: it only ever reduces a position."""

    ENTRY = "ENTRY"
    STOP_LOSS = "STOP_LOSS"
    TAKE_PROFIT = "TAKE_PROFIT"
    TRAILING_EXIT = "TRAILING_EXIT"
    OCO_STOP = "OCO_STOP"
    OCO_LIMIT = "OCO_LIMIT"
    CLOSE = "CLOSE"
    LIQUIDATION = "LIQUIDATION"  # the exchange closing a position at its liquidation price

    @property
    def is_exit(self) -> bool:
        """Reduce-only: it may only make a position smaller."""
        return self is not OrderRole.ENTRY


@dataclass(frozen=True, slots=True, order=True)
class Instrument:
    """What a position is held in: (broker, symbol), shared by every timeframe of the symbol."""

    broker: str
    symbol: str

    @classmethod
    def of(cls, key: CandleKey) -> Instrument:
        """The instrument a candle key trades."""
        return cls(key.broker, key.symbol)

    @classmethod
    def parse(cls, text: str) -> Instrument:
        """Parse `BROKER:SYMBOL` (the form `str()` gives)."""
        broker, _, symbol = text.partition(":")
        if not broker or not symbol:
            raise ValueError(f"bad instrument {text!r}: expected BROKER:SYMBOL")
        return cls(broker, symbol)

    def __str__(self) -> str:
        return f"{self.broker}:{self.symbol}"

    def __hash__(self) -> int:
        # The symbol alone (equal instruments have equal symbols): the positions, marks and
        # epochs are looked up by instrument on every candle, and the generated hash builds a
        # tuple each time.
        return hash(self.symbol)


@dataclass(frozen=True, slots=True)
class Level:
    """A resolved bracket child: `AT` price, `BY` distance, `PCT` fraction, `RR` multiple."""

    kind: Literal["AT", "BY", "PCT", "RR"]
    value: Decimal


@dataclass(frozen=True, slots=True)
class Trail:
    """A trailing distance: `amount` in price units, or a fraction of price when `percent`."""

    amount: Decimal
    percent: bool


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """Exits to place, as one OCO group, once the entry that carries this plan fills."""

    stop_loss: Level | None
    take_profit: Level | None
    trailing: Trail | None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a rule asks the broker for; the broker numbers it, times it and books it."""

    instrument: Instrument
    side: Side
    kind: OrderKind
    qty: Decimal
    tif: TimeInForce
    rule: int | None
    role: OrderRole = OrderRole.ENTRY
    limit: Decimal | None = None
    stop: Decimal | None = None
    trail: Trail | None = None
    exits: ExitPlan | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """One order in the paper book."""

    id: int
    instrument: Instrument
    side: Side
    kind: OrderKind
    qty: Decimal
    tif: TimeInForce
    role: OrderRole
    created_ms: int  # when it was placed: matched only against candles opening at or after it
    rule: int | None = None  # the rule that placed it (exits carry their entry's rule)
    limit: Decimal | None = None
    stop: Decimal | None = None
    trail: Trail | None = None
    anchor: Decimal | None = None  # trailing: the best price seen since placement
    triggered: bool = False  # stop-limit: the stop has triggered, it now rests as a limit
    expires_ms: int | None = None  # DAY: the next UTC midnight after placement
    group: int | None = None  # OCO group: a fill in the group cancels the other members
    parent: int | None = None  # the entry an exit protects
    exits: ExitPlan | None = None  # placed when this entry fills
    status: OrderStatus = OrderStatus.OPEN

    def to_json(self) -> dict[str, Any]:
        """The order as JSON: money as exact decimal strings, times in epoch ms."""
        return {
            "id": self.id,
            "broker": self.instrument.broker,
            "symbol": self.instrument.symbol,
            "side": self.side.value,
            "kind": self.kind.value,
            "qty": to_str(self.qty),
            "tif": self.tif.value,
            "role": self.role.value,
            "created_ms": self.created_ms,
            "rule": self.rule,
            "limit": _opt(self.limit),
            "stop": _opt(self.stop),
            "trail": _trail_json(self.trail),
            "anchor": _opt(self.anchor),
            "triggered": self.triggered,
            "expires_ms": self.expires_ms,
            "group": self.group,
            "parent": self.parent,
            "exits": _exits_json(self.exits),
            "status": self.status.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Order:
        """Load what `to_json` wrote."""
        return cls(
            id=data["id"],
            instrument=Instrument(data["broker"], data["symbol"]),
            side=Side(data["side"]),
            kind=OrderKind(data["kind"]),
            qty=Decimal(data["qty"]),
            tif=TimeInForce(data["tif"]),
            role=OrderRole(data["role"]),
            created_ms=data["created_ms"],
            rule=data["rule"],
            limit=_opt_dec(data["limit"]),
            stop=_opt_dec(data["stop"]),
            trail=_trail_from(data["trail"]),
            anchor=_opt_dec(data["anchor"]),
            triggered=data["triggered"],
            expires_ms=data["expires_ms"],
            group=data["group"],
            parent=data["parent"],
            exits=_exits_from(data["exits"]),
            status=OrderStatus(data["status"]),
        )


FILL_FIELDS: Final = (
    "id", "order_id", "ts", "broker", "symbol", "side", "qty", "price", "fee", "realized",
    "position", "role", "rule",
)  # fmt: skip
"""The keys of `Fill.to_json`, in order: also the journal's columns of a fill."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: `realized` is the change it made to realized PnL, its fee included."""

    id: int
    order_id: int
    ts: int  # epoch ms: the candle's open when filled at the open, else the candle's close time
    instrument: Instrument
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    realized: Decimal
    position: Decimal  # the signed position in the instrument after this fill
    role: OrderRole
    rule: int | None

    def to_json(self) -> dict[str, Any]:
        """spec.md's trade fields (`ts side symbol qty price fee realized`) and a few more."""
        return dict(zip(FILL_FIELDS, self.values(), strict=True))

    def values(self) -> tuple[int | str | None, ...]:
        """The values of `to_json`, in `FILL_FIELDS` order (the journal's row of a fill)."""
        instrument = self.instrument
        return (
            self.id,
            self.order_id,
            self.ts,
            instrument.broker,
            instrument.symbol,
            self.side.value,
            to_str(self.qty),
            to_str(self.price),
            to_str(self.fee),
            to_str(self.realized),
            to_str(self.position),
            self.role.value,
            self.rule,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fill:
        """Load what `to_json` wrote."""
        return cls(
            id=data["id"],
            order_id=data["order_id"],
            ts=data["ts"],
            instrument=Instrument(data["broker"], data["symbol"]),
            side=Side(data["side"]),
            qty=Decimal(data["qty"]),
            price=Decimal(data["price"]),
            fee=Decimal(data["fee"]),
            realized=Decimal(data["realized"]),
            position=Decimal(data["position"]),
            role=OrderRole(data["role"]),
            rule=data["rule"],
        )


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else to_str(value)


def _opt_dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _trail_json(trail: Trail | None) -> dict[str, Any] | None:
    return None if trail is None else {"amount": to_str(trail.amount), "percent": trail.percent}


def _trail_from(data: dict[str, Any] | None) -> Trail | None:
    return None if data is None else Trail(Decimal(data["amount"]), data["percent"])


def _level_json(level: Level | None) -> dict[str, Any] | None:
    return None if level is None else {"kind": level.kind, "value": to_str(level.value)}


def _level_from(data: dict[str, Any] | None) -> Level | None:
    return None if data is None else Level(data["kind"], Decimal(data["value"]))


def _exits_json(plan: ExitPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "stop_loss": _level_json(plan.stop_loss),
        "take_profit": _level_json(plan.take_profit),
        "trailing": _trail_json(plan.trailing),
    }


def _exits_from(data: dict[str, Any] | None) -> ExitPlan | None:
    if data is None:
        return None
    return ExitPlan(
        _level_from(data["stop_loss"]),
        _level_from(data["take_profit"]),
        _trail_from(data["trailing"]),
    )
