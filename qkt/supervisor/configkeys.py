"""KEYS: the one table of the daemon's settings, each key with its type and check.

Its own module because it is the single source every setting is checked against (the file's
keys and the flags alike, in config.py): a new setting is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from qkt.engine import parse_leverage, parse_margin, parse_max_daily_loss, parse_max_drawdown_pct
from qkt.supervisor.daemonconfig import SPAWN_METHODS, PortRange
from qkt.supervisor.riskconfig import LIMIT_NAMES, limit_parser, parsed_by


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port, 0 to 65535"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _at_least_one(value: int) -> str | None:
    return None if value >= 1 else "must be 1 or more"


def _spawn(value: str) -> str | None:
    return None if value in SPAWN_METHODS else "must be 'fork' or 'exec'"


def _ports(value: str) -> str | None:
    PortRange.parse(value)  # its own ConfigError says what is wrong
    return None


@dataclass(frozen=True, slots=True)
class Key:
    """One setting: the type its value has, and what else it must satisfy (None: fine, else
    the reason it is not)."""

    kind: type
    check: Callable[[Any], str | None] | None = None
    obsolete: bool = False  # accepted and ignored (an older qkt's setting), not listed
    number_as_text: bool = False  # a TOML number is taken as its text (money: `250`, `"250"`)


def risk_keys() -> dict[str, Key]:
    """`[risk]` and `[risk.default]`: each value checked by its flag's parser."""
    money = {"number_as_text": True}
    keys = {
        "risk.max_daily_loss": Key(str, parsed_by(parse_max_daily_loss), **money),
        "risk.max_drawdown_pct": Key(str, parsed_by(parse_max_drawdown_pct), **money),
        "risk.flatten": Key(bool),
        "risk.check_interval_s": Key(float, _positive),
        "risk.default.leverage": Key(str, parsed_by(parse_leverage), **money),
        "risk.default.margin": Key(str, parsed_by(parse_margin)),
    }
    for name in LIMIT_NAMES:
        keys[f"risk.default.{name}"] = Key(str, parsed_by(limit_parser(name)), **money)
    return keys


KEYS: Final[dict[str, Key]] = {
    "daemon.load_dir": Key(str),
    "daemon.control_port": Key(int, _port),
    "daemon.spawn": Key(str, _spawn),
    "daemon.deploy_concurrency": Key(int, _positive),
    "daemon.spawn_concurrency": Key(int, _positive),
    "daemon.control_connections": Key(int, _positive),
    "daemon.control_header_timeout_s": Key(float, _positive),
    "daemon.history_wait_s": Key(float, _positive),
    "sim.seed": Key(int),
    "sim.speed": Key(float, _positive),
    "bybit.spot_url": Key(str),
    "bybit.linear_url": Key(str),
    "bybit.rest_url": Key(str),
    "workers.bind": Key(str),
    "workers.ports": Key(str, _ports),
    "workers.module": Key(str),
    "workers.ready_timeout_s": Key(float, _positive),
    "workers.stop_timeout_ms": Key(int, _positive),
    "workers.hang_timeout_s": Key(float, _positive),
    # Obsolete since liveness is the heartbeat (hang_timeout_s): still accepted, and ignored, so
    # that a config file written for an older qkt loads.
    "workers.ping_interval_s": Key(float, _positive, obsolete=True),
    "workers.ping_timeout_s": Key(float, _positive, obsolete=True),
    "workers.ping_failures": Key(int, _positive, obsolete=True),
    "restart.attempts": Key(int),
    "restart.window_s": Key(float),
    "restart.backoff_s": Key(float),
    "restart.backoff_max_s": Key(float),
    "restart.brake_crashes": Key(int, _positive),
    "restart.brake_window_s": Key(float, _positive),
    "restart.brake_pause_s": Key(float, _positive),
    "logs.max_mb": Key(float, _not_negative),
    "logs.backups": Key(int, _at_least_one),
    **risk_keys(),
}
