"""The daemon's wire records: list entry, daemon record, stop result, hub key, daemon health.

Built by the supervisor, returned by the control plane, parsed by the CLI with
`qkt.records.decode` (this module imports nothing heavy: the CLI reads it without pydantic).
`qkt.control.schemas` declares the same fields for OpenAPI; a test holds the two equal.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Literal

from qkt.records import OMIT_NONE, REST, decode, wire_record
from qkt.worker.record import HaltOutcome, HaltRecord, WorkerStatus

StateName = Literal[
    "starting", "running", "stopping", "stopped", "crashed", "backoff", "restarting", "failed"
]


@wire_record
class DeployArgs:
    """The account options a strategy was deployed with (money as decimal strings)."""

    balance: str
    fee_bps: str
    slippage_bps: str
    sim: bool


@wire_record
class KeyFeed:
    """One key a strategy reads, as the hub sees it: its history (warm?) and its feed (live?)."""

    key: str
    needed: int  # closed candles of history the strategy needs to be warm
    history: str  # backfilling | warm | partial | cold (the hub's backfill)
    candles: int  # closed candles the hub holds for the key now (history and live)
    missing: int  # of `needed`, how many it still lacks: the strategy warms on live candles
    source: str | None  # where history came from: `sim`, `bybit-rest`; None: no source
    reason: str | None  # why it is not warm
    stale: bool  # the feed is not live (reconnecting, or no candle for longer than its cadence)
    last_candle_age_ms: int | None  # wall ms since the key's last candle


@wire_record
class ListEntry:
    """One strategy in `GET /list` (and the answer of `POST /deploy`)."""

    name: str
    pid: int | None
    port: int | None
    state: StateName
    started_at: str | None  # ISO 8601 UTC start of the current process
    uptime_ms: int
    trades: int | None  # from the worker's /status; None if unknown
    restarts: int
    file: str
    keys: list[str]
    exit_code: int | None  # of the last process that ended; -N: signal N
    error: str | None
    restart_in_ms: int | None
    args: DeployArgs
    # Halted (docs/risk.md): no new entries, why, by whom, since when; None: trading. Keyword-
    # only, so that the records built on this one may add fields without defaults.
    halt: HaltRecord | None = field(default=None, kw_only=True, metadata=OMIT_NONE)
    # What its keys' feeds are like (keyword-only: records built on this one add fields after).
    stale: bool = field(default=False, kw_only=True)  # a key it reads is not live
    warming: str | None = field(default=None, kw_only=True)  # history it still lacks, and why


@wire_record
class SourceCheck:
    """The deployed source against the file on disk now (`qkt status NAME`)."""

    source_hash: str  # sha256 of the text the daemon compiled and its workers run
    file_changed: bool  # the file on disk differs from it (or is gone): a restart keeps the old


@wire_record
class DaemonRecord(ListEntry):
    """`GET /status/{name}` of a worker without a process that answers: the daemon's record."""

    gave_up: bool  # more crashes than the restart policy allows (state `failed`)
    last_log: list[str]  # the log's last lines when it crashed
    source_hash: str
    file_changed: bool
    feeds: list[KeyFeed] = field(default_factory=list, kw_only=True)


@wire_record
class RunningStatus(WorkerStatus):
    """`GET /status/{name}` of a running worker: its own `/status`, and the daemon's view."""

    restarts: int
    port: int
    file_changed: bool  # the file on disk differs from the source the worker runs
    stale: bool = False  # a key it reads is not live
    warming: str | None = None  # history it still lacks, and why (None: warm, or no need)
    feeds: list[KeyFeed] = field(default_factory=list)  # per key: history and freshness
    extra: dict[str, Any] = field(default_factory=dict, metadata=REST)  # a newer worker's fields


StrategyStatus = RunningStatus | DaemonRecord
"""What `GET /status/{name}` answers: the worker's word, or the daemon's when it cannot."""


def parse_status(raw: object) -> StrategyStatus:
    """One answer of `GET /status[/{name}]`: a running worker's status, or the daemon's record
    (a daemon record has `gave_up`; a worker's status never does)."""
    if isinstance(raw, dict) and "gave_up" not in raw:
        return decode(RunningStatus, raw)
    return decode(DaemonRecord, raw)


@wire_record
class StopResult:
    """`POST /stop/{name}`: the process is gone."""

    name: str
    state: Literal["stopped"]
    exit_code: int | None


@wire_record
class HaltResult:
    """`POST /halt`, `/resume`, `/kill` (one name or all): each strategy's halt and positions
    left, sorted by name."""

    strategies: list[HaltOutcome]


@wire_record
class HubKey:
    """One key of `GET /hub` (the fields of `qkt.hub.KeyStats`)."""

    key: str
    subscribers: int
    candles_published: int
    last_close_ts: int | None
    feed_state: str
    last_message_age_ms: int | None
    seq: int
    duplicates_dropped: int
    warm: bool = False  # the key's ring holds its backfilled history
    history_candles: int = 0  # closed candles the backfill put in the ring
    history_source: str | None = None
    history_reason: str | None = None  # why it is not warm
    stale: bool = False  # no candle for longer than the feed's stale threshold
    last_candle_age_ms: int | None = None


@wire_record
class DaemonHealth:
    """`GET /health`: the daemon is up (no token needed)."""

    status: Literal["ok"]
    version: str
    pid: int
    uptime_ms: int
    strategies: int
    control_port: int
    state_dir: str
    spawn: str
    # Why automatic restarts are paused (many crashes at once: the box-wide brake), or null.
    restarts_paused: str | None
    workers_late: int  # running workers without a heartbeat within the deadline, now


@wire_record
class NotifyTestResult:
    """`POST /notify/test`: what one channel answered to the test message (no secret)."""

    channel: str
    kind: str
    ok: bool
    answer: str


@wire_record
class NotifyChannel:
    """`GET /notify`: one alert channel's health (`qkt.notify.ChannelHealth`, no secret)."""

    name: str
    kind: str
    state: str  # ok | retrying | failing
    sent: int
    failed: int
    dropped: int
    coalesced: int
    pending: int
    last_error: str | None
    last_error_ms: int | None
    last_sent_ms: int | None
