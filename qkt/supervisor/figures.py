"""What the daemon remembers of each strategy's money, and of strategies no longer running.

Wire records (light: the CLI decodes them without pydantic) for `GET /list/all` (`qkt list -a`)
and the figures `/metrics` reads: every figure comes from a worker's heartbeat file (the figures
it stores there, `qkt.worker.beatfigures`) or its last `/status` answer, whichever is newer, so a
scrape or a listing never fans out to every worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from qkt.records import RecordError, decode
from qkt.supervisor.records import DeployArgs
from qkt.worker.record import WorkerFigures


@dataclass(frozen=True, slots=True)
class LastFigures:
    """A worker's account and health as its heartbeat file or a `/status` answer gave them."""

    equity: str
    realized: str
    unrealized: str
    total_pnl: str
    trades: int
    warm: bool
    halted: bool
    last_candle_ts: dict[str, int]  # per key: open time (epoch ms) of its last candle
    at_ms: int  # when the worker gave these figures (epoch ms)
    day_start_equity: str | None = None  # the daily loss's base (None: a worker without risk)


def figures_of(status: dict[str, Any], now_ms: int | None = None) -> LastFigures | None:
    """The figures of one `/status` answer; None if it lacks them (an older or broken worker)."""
    try:
        candles = status.get("last_candle_ts") or {}
        return LastFigures(
            equity=str(status["equity"]),
            realized=str(status["realized"]),
            unrealized=str(status["unrealized"]),
            total_pnl=str(status.get("total_pnl", "0")),
            trades=int(status["trades"]),
            warm=bool(status.get("warm", False)),
            halted=bool(status.get("halted", False)),
            last_candle_ts={str(k): int(v) for k, v in dict(candles).items()},
            at_ms=now_ms if now_ms is not None else int(time.time() * 1000),
            day_start_equity=_day_start(status.get("risk")),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _day_start(risk: object) -> str | None:
    found = risk.get("day_start_equity") if isinstance(risk, dict) else None
    return found if isinstance(found, str) else None


def figures_from_beat(text: bytes) -> LastFigures | None:
    """The figures a worker stored in its heartbeat file; None if they do not decode."""
    try:
        found = decode(WorkerFigures, orjson.loads(text), where="heartbeat figures")
    except (orjson.JSONDecodeError, RecordError):
        return None
    return LastFigures(
        equity=found.equity,
        realized=found.realized,
        unrealized=found.unrealized,
        total_pnl=found.total_pnl,
        trades=found.trades,
        warm=found.warm,
        halted=found.halted,
        last_candle_ts=found.last_candle_ts,
        at_ms=found.at_ms,
        day_start_equity=found.day_start_equity,
    )


@dataclass(frozen=True, slots=True)
class RetiredStrategy:
    """A strategy stopped with `qkt stop`: what it ran and how it ended (kept until `qkt rm`)."""

    name: str
    file: str
    args: DeployArgs
    stopped_at: str  # ISO 8601 UTC
    exit_code: int | None
    figures: LastFigures | None  # its last figures before the stop; None if it never answered


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One row of `GET /list/all`: a deployed strategy, or one stopped and not yet removed."""

    name: str
    state: str  # a list entry's state; `stopped` for a strategy stopped with `qkt stop`
    file: str
    pid: int | None
    port: int | None
    uptime_ms: int
    restarts: int
    trades: int | None
    equity: str | None
    realized: str | None
    unrealized: str | None
    total_pnl: str | None
    exit_code: int | None
    stopped_at: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RemoveResult:
    """`POST /rm/{name}`: the strategy is forgotten; where its books went (None: deleted)."""

    name: str
    archived: str | None
