"""The HTTP contract of the control plane (pydantic), for validation and OpenAPI.

The records themselves are the dataclasses of `qkt.supervisor.records` (built by the daemon,
parsed by the CLI); the response models here declare the same fields, with descriptions and
bounds, and tests/control/test_records.py holds the two equal field for field.

The OpenAPI schema generated from these models is fuzzed (tests/control/test_fuzz.py): a request
the schema allows must not be refused for its shape, so the patterns and bounds below are exactly
what the daemon accepts (names as `qkt.paths.NAME_PATTERN`, money as `Deployment` checks it).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, WithJsonSchema

from qkt.inputs import MAX_BALANCE, MAX_BPS
from qkt.paths import NAME_PATTERN
from qkt.supervisor.records import StateName
from qkt.supervisor.registry import RESERVED_NAMES
from qkt.worker.schemas import HaltOut, HaltOutcomeOut, StatusOut

SCHEMA_VERSION: Final = 1
# Anchored for JSON Schema (`pattern` is a search): what `qkt.paths.check_name` accepts.
NAME_REGEX: Final = f"^{NAME_PATTERN.pattern}$"
_RESERVED: Final[list[JsonValue]] = [name for name in sorted(RESERVED_NAMES)]
NAME_DESCRIPTION: Final = "1 to 64 letters, digits, '_' or '-', not starting with '-'."
MAX_PATH: Final = 4096  # PATH_MAX on Linux
# Decimal strings without exponent, in range: 0 < balance <= 1e15, 0 <= bps <= 10000.
BALANCE_REGEX: Final = (
    r"^\+?0*([1-9][0-9]{0,14}(\.[0-9]*)?|1000000000000000(\.0*)?|\.[0-9]*[1-9][0-9]*)$"
)
BPS_REGEX: Final = r"^\+?0*([0-9]{1,4}(\.[0-9]*)?|10000(\.0*)?|\.[0-9]+)$"
# Risk limits (docs/risk.md) as the engine's flag parsers accept them, or `off`.
_MONEY: Final = r"\+?0*([1-9][0-9]{0,14}(\.[0-9]*)?|1000000000000000(\.0*)?|\.[0-9]*[1-9][0-9]*)"
RISK_PATTERNS: Final = {
    "max_daily_loss": f"^(off|{_MONEY})$",
    "max_drawdown_pct": r"^(off|\+?0*([1-9][0-9]?(\.[0-9]*)?|100(\.0*)?|\.[0-9]*[1-9][0-9]*)%?)$",
    "max_position_notional": f"^(off|{_MONEY})$",
    "max_orders_per_minute": r"^(off|[1-9][0-9]{0,4}|100000)$",
    "max_loss_streak": r"^(off|[1-9][0-9]{0,3}|10000)$",
    "leverage": r"^\+?0*([1-9][0-9]?(\.[0-9]*)?|100(\.0*)?)x?$",
}


def _risk(name: str, description: str) -> Any:
    """An optional risk option: a string its flag's parser accepts (null: the daemon's
    `[risk.default]`)."""
    return Field(default=None, pattern=RISK_PATTERNS[name], description=description)


def _plain_decimal(regex: str, what: str) -> BeforeValidator:
    """Hold a string to `regex` before pydantic reads it as a Decimal, so that the schema's
    string branch and the server agree exactly (no exponent, no `-`, within the bounds)."""
    pattern = re.compile(regex)

    def check(value: object) -> object:
        if isinstance(value, bool) or (isinstance(value, str) and not pattern.match(value)):
            raise ValueError(f"expected {what}, as a number or a plain decimal string")
        return value

    return BeforeValidator(check)


def _decimal_schema(regex: str, **bounds: int) -> WithJsonSchema:
    """A JSON number within `bounds`, or a decimal string matching `regex`."""
    number = {"type": "number", **bounds}
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": regex}]})


Balance = Annotated[
    Decimal,
    _plain_decimal(BALANCE_REGEX, "a decimal greater than 0 and at most 1e15"),
    Field(gt=0, le=MAX_BALANCE, allow_inf_nan=False),
    _decimal_schema(BALANCE_REGEX, exclusiveMinimum=0, maximum=int(MAX_BALANCE)),
]
Bps = Annotated[
    Decimal,
    _plain_decimal(BPS_REGEX, "a decimal from 0 to 10000"),
    Field(ge=0, le=MAX_BPS, allow_inf_nan=False),
    _decimal_schema(BPS_REGEX, minimum=0, maximum=int(MAX_BPS)),
]


class Health(BaseModel):
    """`GET /health`: the daemon is up (no token needed)."""

    status: Literal["ok"]
    version: str
    pid: int
    uptime_ms: int
    strategies: int
    control_port: int
    state_dir: str
    spawn: str
    restarts_paused: str | None = Field(
        description="Why automatic restarts are paused (many crashes at once), or null."
    )
    workers_late: int = Field(
        description="Running workers whose last heartbeat is older than the hang deadline."
    )


class DeployRequest(BaseModel):
    """`POST /deploy`: what to run, under which name, with which paper account."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"file": "examples/strategies/ema_cross.qkt"},
                {
                    "file": "examples/strategies/rsi_revert.qkt",
                    "name": "rsi_small",
                    "balance": "2500.50",
                    "fee_bps": "7.5",
                    "slippage_bps": 2,
                },
            ]
        },
    )

    file: str = Field(
        min_length=1,
        max_length=MAX_PATH,
        description="Path of the .qkt file (absolute, or relative to the daemon's working folder).",
    )
    name: str | None = Field(
        default=None,
        pattern=NAME_REGEX,
        description=f"Default: the file's stem. {NAME_DESCRIPTION} Reserved: "
        f"{', '.join(sorted(RESERVED_NAMES))} (400 invalid_name).",
        json_schema_extra={"not": {"enum": _RESERVED}},
    )
    balance: Balance = Field(default=Decimal("10000"), description="Starting balance.")
    fee_bps: Bps = Field(default=Decimal("0"), description="Fee per fill, in basis points.")
    slippage_bps: Bps = Field(default=Decimal("0"), description="Slippage per fill, in bps.")
    sim: bool = Field(default=False, description="Put every stream on the simulated market.")
    speed: float | None = Field(
        default=None, gt=0, description="Must match the daemon's --speed (else 409)."
    )
    seed: int | None = Field(default=None, description="Must match the daemon's --seed (else 409).")
    replace: bool = Field(default=False, description="Replace the strategy of that name.")
    keep_state: bool = Field(default=False, description="With replace: keep its journal.")
    resume: bool = Field(default=False, description="Carry on with another deployment's books.")
    fresh: bool = Field(default=False, description="Archive another deployment's books.")
    max_daily_loss: str | None = _risk("max_daily_loss", "Money lost since 00:00 UTC, or off.")
    max_drawdown_pct: str | None = _risk("max_drawdown_pct", "Percent below peak equity, or off.")
    max_position_notional: str | None = _risk(
        "max_position_notional", "Money: |position| x price, per symbol, or off."
    )
    max_orders_per_minute: str | None = _risk(
        "max_orders_per_minute", "Orders in 60 s (default 60), or off."
    )
    max_loss_streak: str | None = _risk("max_loss_streak", "Losing trades in a row, or off.")
    leverage: str | None = _risk("leverage", "Linear perpetuals: 1 to 100 (default 1).")
    margin: bool | None = Field(default=None, description="false: `--margin off` (unchecked).")

    def limit_flags(self) -> dict[str, str]:
        """The risk limits given, by name (the rest take the daemon's `[risk.default]`)."""
        return {
            name: value
            for name in RISK_PATTERNS
            if name != "leverage" and (value := getattr(self, name)) is not None
        }

    require_warm: bool = Field(
        default=False,
        description="Fail (409 not_warm, nothing deployed) unless every key's history is there.",
    )


class DeployArgs(BaseModel):
    """The account options a strategy was deployed with (money as decimal strings)."""

    balance: str
    fee_bps: str
    slippage_bps: str
    sim: bool


class KeyFeed(BaseModel):
    """One key a strategy reads: its history (warm?) and its feed (live?)."""

    key: str
    needed: int = Field(description="Closed candles of history the strategy needs.")
    history: str = Field(description="The hub's backfill: backfilling, warm, partial or cold.")
    candles: int = Field(description="Closed candles the hub holds for the key now.")
    missing: int = Field(description="Of `needed`, how many it still lacks (warms on live).")
    source: str | None = Field(description="Where history came from (sim, bybit-rest).")
    reason: str | None = Field(description="Why it is not warm.")
    stale: bool = Field(description="The key's feed is not live.")
    last_candle_age_ms: int | None


class NotifyTestResult(BaseModel):
    """`POST /notify/test`: what one channel answered to the test message."""

    channel: str
    kind: str
    ok: bool
    answer: str = Field(description="The service's answer: `200`, `429 retry after 3s`, ...")


class NotifyChannel(BaseModel):
    """`GET /notify`: one alert channel's health."""

    name: str
    kind: str
    state: str = Field(description="ok, retrying or failing.")
    sent: int
    failed: int
    dropped: int
    coalesced: int
    pending: int
    last_error: str | None
    last_error_ms: int | None
    last_sent_ms: int | None


class ListEntry(BaseModel):
    """One strategy in `GET /list` (and the answer of `POST /deploy`)."""

    name: str
    pid: int | None
    port: int | None
    state: StateName
    started_at: str | None = Field(description="ISO 8601 UTC start of the current process.")
    uptime_ms: int
    trades: int | None = Field(description="From the worker's /status; null if unknown.")
    restarts: int
    file: str
    keys: list[str]
    exit_code: int | None = Field(description="Of the last process that ended; -N: signal N.")
    error: str | None
    restart_in_ms: int | None
    args: DeployArgs
    halt: HaltOut | None = Field(default=None, description="Halted: why, by whom, since when.")
    stale: bool = Field(default=False, description="A key it reads is not live.")
    warming: str | None = Field(default=None, description="History it still lacks, and why.")


class HaltResult(BaseModel):
    """`POST /halt`, `/resume`, `/kill`: each strategy's halt and the positions left."""

    strategies: list[HaltOutcomeOut]


class StopResult(BaseModel):
    """`POST /stop/{name}`: the process is gone."""

    name: str
    state: Literal["stopped"]
    exit_code: int | None


class ShutdownAccepted(BaseModel):
    """`POST /shutdown`: the daemon stops every worker, then exits."""

    status: Literal["shutting_down"]


class HubKey(BaseModel):
    """One key of `GET /hub`."""

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


class RunningStatus(StatusOut):
    """`GET /status/{name}` of a running worker: its own `/status`, and the daemon's view."""

    model_config = ConfigDict(extra="allow")  # what a worker adds passes through

    state: Literal["running"]
    restarts: int
    port: int
    file_changed: bool = Field(description="The file on disk differs from the deployed source.")
    stale: bool = Field(default=False, description="A key it reads is not live.")
    warming: str | None = Field(default=None, description="History it still lacks, and why.")
    feeds: list[KeyFeed] = Field(default_factory=list, description="Per key: history, feed.")


class WorkerRecord(ListEntry):
    """`GET /status/{name}` of a worker without a process that answers: the daemon's record."""

    gave_up: bool = Field(description="More crashes than the restart policy allows (`failed`).")
    last_log: list[str] = Field(description="The log's last lines when it crashed.")
    source_hash: str = Field(description="sha256 of the source deployed (what restarts run).")
    file_changed: bool = Field(description="The file on disk differs from the deployed source.")
    feeds: list[KeyFeed] = Field(default_factory=list, description="Per key: history, feed.")


WorkerStatus = RunningStatus | WorkerRecord
