"""The worker's `/status` as a typed record: built by the runner, passed on by the daemon (with
its own view added), parsed by the CLI.

Field names are spec.md's; money, prices and quantities are exact decimal strings. The pydantic
models of `qkt.worker.schemas` declare the same fields for OpenAPI; a test holds them equal.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Literal

from qkt.records import OMIT_NONE, wire_record

RunStateName = Literal["starting", "running", "stopping"]


@wire_record
class PositionRecord:
    """An open position, marked at its symbol's latest close."""

    broker: str
    symbol: str
    qty: str  # signed: > 0 long, < 0 short
    avg_price: str
    mark: str
    unrealized: str


@wire_record
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


@wire_record
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


@wire_record
class SubscriberRecord:
    """What the worker's hub subscriber has seen (gaps show as `missed`)."""

    delivered: int
    duplicates: int
    buffered: int
    repaired: int
    missed: int
    malformed: int


@wire_record
class EventsRecord:
    """The event ring: the latest id, live SSE readers, events dropped for slow ones."""

    last_id: int
    subscribers: int
    dropped: int


@wire_record
class HaltRecord:
    """Why a strategy is halted (docs/risk.md): what (`kind`: "operator" or the limit breached),
    why, who asked (`by`), since when (epoch ms), and whether it was a kill."""

    kind: str
    reason: str
    by: str
    since_ms: int
    killed: bool


@wire_record
class LimitsRecord:
    """One strategy's risk limits; null = off (money and percent as exact strings)."""

    max_daily_loss: str | None
    max_drawdown_pct: str | None
    max_position_notional: str | None
    max_orders_per_minute: int | None
    max_loss_streak: int | None


@wire_record
class RiskRecord:
    """The halt, the limits, the figures they are measured from, and buying power, now."""

    halted: bool
    halt: HaltRecord | None
    limits: LimitsRecord
    equity: str
    day_start_equity: str  # equity at 00:00 UTC (or at the last resume)
    daily_pnl: str
    peak_equity: str
    loss_streak: int
    orders_last_minute: int
    available: str  # balance not held as margin
    leverage: str
    margin: bool  # False: `--margin off` (unchecked fills)
    halts: dict[str, int]  # halts since the worker started, by kind (`qkt_halts_total`)
    rejected: int  # orders rejected since the worker started


@wire_record
class HaltOutcome:
    """What `POST /halt`, `/resume` or `/kill` left: the halt (None: trading) and the open
    positions (none after `kill --flatten`, unless a symbol has no price yet)."""

    name: str
    halted: bool
    halt: HaltRecord | None
    positions: list[PositionRecord]


@wire_record
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
    # Halt, limits and buying power (docs/risk.md); keyword-only, so that the records built on
    # this one may add fields without defaults; None from a worker older than halts.
    risk: RiskRecord | None = field(default=None, kw_only=True, metadata=OMIT_NONE)
    # Each indicator's latest value by its text (`EMA(btc.close, 50)`), an exact decimal string,
    # None until warm; at the candles of `last_candle_ts`. None from a worker older than it.
    indicators: dict[str, str | None] | None = field(default=None, kw_only=True, metadata=OMIT_NONE)


@wire_record
class WorkerFigures:
    """What a worker's heartbeat file carries besides the beat (`qkt.worker.heartbeat`): the
    figures `/metrics`, `qkt list -a` and the daemon-wide limits read, without a `/status`."""

    at_ms: int  # wall clock (epoch ms) when the worker took these figures
    equity: str
    realized: str
    unrealized: str
    total_pnl: str
    day_start_equity: str  # equity at 00:00 UTC (or at the last resume): the daily loss's base
    trades: int
    warm: bool
    halted: bool
    last_candle_ts: dict[str, int]  # per key: open time of its last candle
