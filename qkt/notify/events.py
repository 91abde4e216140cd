"""What the daemon tells people about: one typed `Event` record per happening.

The daemon builds events with the constructors below and hands them to `Notifier.publish`. An
event carries only what a reader needs (strategy, exit code, log tail, ...), never a secret: it
may be serialised to a webhook as it is.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final


class EventKind(enum.Enum):
    """Every kind of event a channel may subscribe to (the `events = [...]` names)."""

    DEPLOY = "deploy"
    DEPLOY_FAILED = "deploy_failed"
    STOP = "stop"
    CRASH = "crash"
    RESTART = "restart"
    GAVE_UP = "gave_up"
    HALT = "halt"
    RESUME = "resume"
    KILL = "kill"
    RISK = "risk"
    STALE = "stale"
    LIVE = "live"
    FILL = "fill"
    DAEMON = "daemon"
    SUMMARY = "summary"
    TEST = "test"


EVENT_NAMES: Final = frozenset(kind.value for kind in EventKind)
# `events = ["*"]` means these: fills are chatty, so a channel gets them only when it names them.
WILDCARD_KINDS: Final = frozenset(kind for kind in EventKind if kind is not EventKind.FILL)
# Kinds that are never merged with one another: each is a message of its own.
NEVER_COALESCED: Final = frozenset({EventKind.SUMMARY, EventKind.TEST})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Event:
    """One happening: its kind, the strategy it concerns (None for daemon-wide), when, details.

    `fields` are short printable facts (`exit_code`, `reason`, ...); `lines` are longer text kept
    in order (a crashed worker's last log lines, the daily summary's table).
    """

    kind: EventKind
    strategy: str | None = None
    time_ms: int = field(default_factory=_now_ms)
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    lines: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        kind: EventKind,
        strategy: str | None = None,
        *,
        time_ms: int | None = None,
        lines: Sequence[str] = (),
        **fields: object,
    ) -> Event:
        """An event with `fields` turned into strings (None values left out)."""
        return cls(
            kind,
            strategy,
            _now_ms() if time_ms is None else time_ms,
            MappingProxyType({k: str(v) for k, v in fields.items() if v is not None}),
            tuple(lines),
        )

    @classmethod
    def crash(
        cls,
        strategy: str,
        exit_code: int | None,
        log_tail: Sequence[str] = (),
        *,
        time_ms: int | None = None,
    ) -> Event:
        """A worker process died on its own: its exit code and its last log lines."""
        return cls.of(
            EventKind.CRASH, strategy, time_ms=time_ms, lines=log_tail, exit_code=exit_code
        )

    @classmethod
    def deploy(cls, strategy: str, file: str | None = None) -> Event:
        """A strategy was deployed and runs."""
        return cls.of(EventKind.DEPLOY, strategy, file=file)

    @classmethod
    def deploy_failed(cls, strategy: str, reason: str) -> Event:
        """A deploy did not end running (compile error, spawn failure, not ready in time)."""
        return cls.of(EventKind.DEPLOY_FAILED, strategy, reason=reason)

    @classmethod
    def stop(cls, strategy: str, *, flatten: bool) -> Event:
        """A strategy was stopped on request."""
        return cls.of(EventKind.STOP, strategy, flatten=flatten)

    @classmethod
    def restart(cls, strategy: str, attempt: int) -> Event:
        """A crashed strategy was started again (`attempt` within the restart window)."""
        return cls.of(EventKind.RESTART, strategy, attempt=attempt)

    @classmethod
    def gave_up(cls, strategy: str, restarts: int) -> Event:
        """Too many crashes: the daemon stopped restarting the strategy."""
        return cls.of(EventKind.GAVE_UP, strategy, restarts=restarts)

    @classmethod
    def halt(cls, strategy: str, reason: str) -> Event:
        """A strategy stopped trading (a risk rule, or an operator)."""
        return cls.of(EventKind.HALT, strategy, reason=reason)

    @classmethod
    def resume(cls, strategy: str) -> Event:
        """A halted strategy trades again."""
        return cls.of(EventKind.RESUME, strategy)

    @classmethod
    def kill(cls, strategy: str | None, *, flatten: bool) -> Event:
        """The kill switch, for one strategy or (None) all of them."""
        return cls.of(EventKind.KILL, strategy, flatten=flatten)

    @classmethod
    def risk(cls, strategy: str, limit: str, value: str, reason: str | None = None) -> Event:
        """A risk limit (`max_daily_loss`, ...) was breached at `value`."""
        return cls.of(EventKind.RISK, strategy, limit=limit, value=value, reason=reason)

    @classmethod
    def stale(cls, key: str, silent_s: float | None = None) -> Event:
        """A feed key (`BYBIT:BTCUSDT:1m`) went quiet; `live` when it comes back."""
        return cls.of(EventKind.STALE, None, key=key, silent_s=silent_s)

    @classmethod
    def live(cls, key: str) -> Event:
        """A stale feed key delivers again."""
        return cls.of(EventKind.LIVE, None, key=key)

    @classmethod
    def fill(cls, strategy: str, symbol: str, side: str, qty: str, price: str) -> Event:
        """Money travels as text here (exact decimals as the books print them)."""
        return cls.of(EventKind.FILL, strategy, symbol=symbol, side=side, qty=qty, price=price)

    @classmethod
    def daemon(cls, what: str, *, time_ms: int | None = None, detail: str | None = None) -> Event:
        """The daemon itself started or stopped (`what` is "start" or "stop")."""
        return cls.of(EventKind.DAEMON, None, time_ms=time_ms, what=what, detail=detail)
