"""The HTTP contract of the control plane (pydantic): shared by the routes and the CLI."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = 1
StateName = Literal["starting", "running", "stopping", "stopped", "crashed", "restarting"]


class ErrorBody(BaseModel):
    """`{"code": "<snake_case>", "message": "<human sentence>", ...details}`."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorEnvelope(BaseModel):
    """Every error answer: `{"error": {"code", "message", ...}}`."""

    error: ErrorBody


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


class DeployRequest(BaseModel):
    """`POST /deploy`: what to run, under which name, with which paper account."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(
        min_length=1,
        description="Path of the .qkt file (absolute, or relative to the daemon's working folder).",
    )
    name: str | None = Field(default=None, description="Default: the file's stem.")
    balance: Decimal = Field(default=Decimal("10000"), description="Starting balance.")
    fee_bps: Decimal = Decimal("0")
    slippage_bps: Decimal = Decimal("0")
    sim: bool = Field(default=False, description="Put every stream on the simulated market.")
    speed: float | None = Field(default=None, description="Must match the daemon's --speed.")
    seed: int | None = Field(default=None, description="Must match the daemon's --seed.")


class DeployArgs(BaseModel):
    """The account options a strategy was deployed with (money as decimal strings)."""

    balance: str
    fee_bps: str
    slippage_bps: str
    sim: bool


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


WorkerStatus = dict[str, Any]
