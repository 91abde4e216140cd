"""The worker status port's HTTP contract as pydantic models: what `/openapi.json` promises.

Money, prices and quantities are exact decimal strings (never floats); times are epoch ms unless
the name says otherwise (`started_at` is ISO 8601 UTC). Field names follow spec.md.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    """`GET /health`."""

    status: str = Field(examples=["ok"])


class PositionOut(BaseModel):
    """An open position, marked at its symbol's latest close."""

    broker: str
    symbol: str
    qty: str = Field(description="signed: > 0 long, < 0 short")
    avg_price: str
    mark: str
    unrealized: str


class TradeOut(BaseModel):
    """One fill (spec.md's trade fields `ts side symbol qty price fee realized`, and more)."""

    id: int
    order_id: int
    ts: int = Field(description="epoch ms of the fill (market time)")
    broker: str
    symbol: str
    side: str = Field(examples=["BUY", "SELL"])
    qty: str
    price: str
    fee: str
    realized: str = Field(description="change to realized PnL, fee included")
    position: str = Field(description="signed position after the fill")
    role: str
    rule: int | None


class OrderOut(BaseModel):
    """A resting order (or a market order waiting for the next open)."""

    id: int
    broker: str
    symbol: str
    side: str
    kind: str
    qty: str
    tif: str
    role: str
    created_ms: int
    rule: int | None
    limit: str | None
    stop: str | None
    trail: dict[str, Any] | None
    anchor: str | None
    triggered: bool
    expires_ms: int | None
    group: int | None
    parent: int | None
    exits: dict[str, Any] | None
    status: str


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


class StatusOut(BaseModel):
    """`GET /status`: the strategy's account, positions and health, now."""

    strategy: str
    version: int
    name: str
    pid: int
    state: str = Field(examples=["starting", "running", "stopping"])
    started_at: str = Field(description="ISO 8601 UTC")
    uptime_ms: int
    file: str
    start_balance: str
    balance: str
    equity: str
    realized: str
    unrealized: str
    total_pnl: str
    fees: str
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
    fill_at: str
    sim: bool
    subscriber: SubscriberOut | None
    events: EventsInfoOut


class EventOut(BaseModel):
    """One ring event: `event_id`, `type` (trade, signal, order, log, candle), `ts`, its body."""

    model_config = {"extra": "allow"}

    event_id: int
    type: str
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

    status: str = Field(examples=["stopping"])
    flatten: bool


class ErrorBody(BaseModel):
    """The error itself."""

    code: str
    message: str


class ErrorOut(BaseModel):
    """Every error: `{"error": {"code", "message"}}`."""

    error: ErrorBody
