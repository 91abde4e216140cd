"""The worker's `/status` as a typed record: built by the runner, passed on by the daemon (with
its own view added), parsed by the CLI.

Field names are spec.md's; money, prices and quantities are exact decimal strings. The pydantic
models of `qkt.worker.schemas` declare the same fields for OpenAPI; a test holds them equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

RunStateName = Literal["starting", "running", "stopping"]


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """An open position, marked at its symbol's latest close."""

    broker: str
    symbol: str
    qty: str  # signed: > 0 long, < 0 short
    avg_price: str
    mark: str
    unrealized: str


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One fill (spec.md's trade fields `ts side symbol qty price fee realized`, and more)."""

    id: int
    order_id: int
    ts: int  # epoch ms of the fill (market time)
    broker: str
    symbol: str
    side: str
    qty: str
    price: str
    fee: str
    realized: str  # change to realized PnL, fee included
    position: str  # signed position after the fill
    role: str
    rule: int | None


@dataclass(frozen=True, slots=True)
class OrderRecord:
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


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """What the worker's hub subscriber has seen (gaps show as `missed`)."""

    delivered: int
    duplicates: int
    buffered: int
    repaired: int
    missed: int
    malformed: int


@dataclass(frozen=True, slots=True)
class EventsRecord:
    """The event ring: the latest id, live SSE readers, events dropped for slow ones."""

    last_id: int
    subscribers: int
    dropped: int


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """`GET /status` of a worker: the strategy's account, positions and health, now."""

    strategy: str
    version: int
    name: str
    pid: int
    state: str  # the worker's RunStateName; the daemon puts its own `state` in its place
    started_at: str  # ISO 8601 UTC
    uptime_ms: int
    file: str
    source_hash: str  # sha256 of the source this worker compiled
    start_balance: str
    balance: str
    equity: str
    realized: str
    unrealized: str
    total_pnl: str
    fees: str
    positions: list[PositionRecord]
    open_orders: list[OrderRecord]
    trades: int
    last_trade: TradeRecord | None
    keys: list[str]
    last_candle_ts: dict[str, int]  # per key: open time of its last candle
    warm: bool
    candles: dict[str, int]  # per key: live candles processed
    warmup_candles: int
    fee_bps: str
    slippage_bps: str
    fill_at: str
    sim: bool
    subscriber: SubscriberRecord | None
    events: EventsRecord
