"""The worker status port's HTTP contract as pydantic models: what `/openapi.json` promises.

Money, prices and quantities are exact decimal strings (never floats); times are epoch ms unless
the name says otherwise (`started_at` is ISO 8601 UTC). Field names follow spec.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from qkt.dsl.program import TimeInForce
from qkt.engine import FillAt, OrderKind, OrderRole, OrderStatus, Side
from qkt.worker.events import EventKind
from qkt.worker.record import RunStateName

# What `qkt.money.to_str` writes: no exponent, no trailing zeros, `-` for negatives.
DECIMAL_PATTERN: Final = r"^-?[0-9]+(\.[0-9]+)?$"
DecimalStr = Annotated[
    str, Field(pattern=DECIMAL_PATTERN, description="exact decimal string", examples=["10012.5"])
]


class HealthOut(BaseModel):
    """`GET /health`."""

    status: Literal["ok"]


class PositionOut(BaseModel):
    """An open position, marked at its symbol's latest close."""

    broker: str
    symbol: str
    qty: DecimalStr = Field(description="signed: > 0 long, < 0 short")
    avg_price: DecimalStr
    mark: DecimalStr
    unrealized: DecimalStr


class TradeOut(BaseModel):
    """One fill (spec.md's trade fields `ts side symbol qty price fee realized`, and more)."""

    id: int
    order_id: int
    ts: int = Field(description="epoch ms of the fill (market time)")
    broker: str
    symbol: str
    side: Side
    qty: DecimalStr
    price: DecimalStr
    fee: DecimalStr
    realized: DecimalStr = Field(description="change to realized PnL, fee included")
    position: DecimalStr = Field(description="signed position after the fill")
    role: OrderRole
    rule: int | None


class OrderOut(BaseModel):
    """A resting order (or a market order waiting for the next open)."""

    id: int
    broker: str
    symbol: str
    side: Side
    kind: OrderKind
    qty: DecimalStr
    tif: TimeInForce
    role: OrderRole
    created_ms: int
    rule: int | None
    limit: DecimalStr | None
    stop: DecimalStr | None
    trail: dict[str, Any] | None
    anchor: DecimalStr | None
    triggered: bool
    expires_ms: int | None
    group: int | None
    parent: int | None
    exits: dict[str, Any] | None
    status: OrderStatus


class SubscriberOut(BaseModel):
    """What the worker's hub subscriber has seen (gaps show as `missed`)."""

    delivered: int
    duplicates: int
    buffered: int
    repaired: int
    missed: int
    malformed: int


class EventsInfoOut(BaseModel):
    """The event ring: the latest id, live SSE readers, events dropped for slow ones."""

    last_id: int
    subscribers: int
    dropped: int


class HaltOut(BaseModel):
    """Why a strategy is halted (docs/risk.md)."""

    kind: str = Field(description="`operator`, or the limit breached", examples=["max_daily_loss"])
    reason: str
    by: str = Field(description="who asked: `operator`, `risk` (its limits), `daemon`")
    since_ms: int = Field(description="epoch ms")
    killed: bool = Field(description="halted by `kill` (every order cancelled too)")


class LimitsOut(BaseModel):
    """The strategy's risk limits; null = off."""

    max_daily_loss: DecimalStr | None
    max_drawdown_pct: DecimalStr | None = Field(description="percent of the peak equity")
    max_position_notional: DecimalStr | None
    max_orders_per_minute: int | None
    max_loss_streak: int | None


class RiskOut(BaseModel):
    """The halt, the limits, the figures they are measured from, and buying power."""

    halted: bool
    halt: HaltOut | None
    limits: LimitsOut
    equity: DecimalStr
    day_start_equity: DecimalStr = Field(description="equity at 00:00 UTC or the last resume")
    daily_pnl: DecimalStr
    peak_equity: DecimalStr
    loss_streak: int
    orders_last_minute: int
    available: DecimalStr = Field(description="balance not held as margin")
    leverage: DecimalStr
    margin: bool = Field(description="false: `--margin off`, fills unchecked")
    halts: dict[str, int] = Field(description="halts since the worker started, by kind")
    rejected: int = Field(description="orders rejected since the worker started")


class HaltOutcomeOut(BaseModel):
    """`POST /halt`, `/resume`, `/kill`: the halt now and the positions left open."""

    name: str
    halted: bool
    halt: HaltOut | None
    positions: list[PositionOut]


class StatusOut(BaseModel):
    """`GET /status`: the strategy's account, positions and health, now."""

    strategy: str
    version: int
    name: str
    pid: int
    state: RunStateName
    started_at: str = Field(description="ISO 8601 UTC", examples=["2026-05-08T15:02:14.234Z"])
    uptime_ms: int
    file: str
    source_hash: str = Field(description="sha256 of the source text this worker compiled")
    start_balance: DecimalStr
    balance: DecimalStr
    equity: DecimalStr
    realized: DecimalStr
    unrealized: DecimalStr
    total_pnl: DecimalStr
    fees: DecimalStr
    positions: list[PositionOut]
    open_orders: list[OrderOut]
    trades: int
    last_trade: TradeOut | None
    keys: list[str]
    last_candle_ts: dict[str, int] = Field(description="per key: open time of its last candle")
    warm: bool
    candles: dict[str, int] = Field(description="per key: live candles processed")
    warmup_candles: int
    fee_bps: str
    slippage_bps: str
    fill_at: FillAt
    sim: bool
    subscriber: SubscriberOut | None
    events: EventsInfoOut
    risk: RiskOut | None = Field(default=None, description="halt, limits and buying power")
    indicators: dict[str, DecimalStr | None] | None = Field(
        default=None,
        description="each indicator's latest value by its text (`EMA(btc.close, 50)`); "
        "null until warm",
    )


class EventOut(BaseModel):
    """One ring event: `event_id`, `type` (trade, signal, order, log, candle), `ts`, its body."""

    model_config = ConfigDict(extra="allow")

    event_id: int
    type: EventKind
    ts: int


class LogsOut(BaseModel):
    """`GET /logs`: ring events, oldest first; page on with `since=last_id`."""

    events: list[EventOut]
    last_id: int = Field(description="the event_id of the last event returned (or `since`)")


class TradesOut(BaseModel):
    """`GET /trades`: fills from the journal, oldest first; page on with `after=last_id`."""

    trades: list[TradeOut]
    total: int
    last_id: int | None


class StopOut(BaseModel):
    """`POST /stop`: the stop was accepted and is under way."""

    status: Literal["stopping"]
    flatten: bool
