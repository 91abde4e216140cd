"""DaemonConfig: every daemon setting, from defaults, a TOML file (`--config`) and flags.

`load_config(state, file, flags)` is the one way to build it: the file's settings, then the
flags over them, every key checked against `KEYS` (a misspelt key is an error naming it, from
the file or from code), every value against its type and range, then one frozen DaemonConfig.
Defaults live once, in the dataclasses below; a setting left out keeps its default.

The file's sections and keys (one unit per quantity: a key says it, `_s` or `_ms`):

    [daemon]   load_dir, control_port, spawn ("fork" | "exec"), deploy_concurrency,
               spawn_concurrency, control_connections, control_header_timeout_s,
               history_wait_s
    [sim]      seed, speed
    [bybit]    spot_url, linear_url, rest_url
    [workers]  bind, ports ("LO-HI"), ready_timeout_s, stop_timeout_ms, hang_timeout_s, module
    [restart]  attempts, window_s, backoff_s, backoff_max_s, brake_crashes, brake_window_s,
               brake_pause_s
    [logs]     max_mb (size of a log before it rotates; 0: never), backups (rotated copies kept)
    [risk]     max_daily_loss, max_drawdown_pct (daemon-wide: every strategy summed), flatten,
               check_interval_s
    [risk.default]  max_daily_loss, max_drawdown_pct, max_position_notional,
               max_orders_per_minute, max_loss_streak, leverage, margin (per strategy; a
               deploy's flags override them). Money and percent as numbers or strings, `off`.
    [notify]   summary_at, and one [notify.NAME] table per alert channel (docs/alerts.md):
               read by `qkt.notify.load_notify_config`, with secrets from the environment

A new setting is one `KEYS` entry (its type and check) and one field of its section's
dataclass, read in `_build`; a new section is a new dataclass and its keys.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from qkt.engine import parse_leverage, parse_margin, parse_max_daily_loss, parse_max_drawdown_pct
from qkt.log import MB, LogRotation
from qkt.market.feed import FeedOptions
from qkt.notify import NotifyConfig, load_notify_config
from qkt.paths import StateDir
from qkt.supervisor.brake import BrakeSettings
from qkt.supervisor.errors import ConfigError
from qkt.supervisor.restart import RestartPolicy
from qkt.supervisor.riskconfig import (
    LIMIT_NAMES,
    SUBSECTIONS,
    RiskSettings,
    limit_parser,
    parsed_by,
    risk_settings,
)

SpawnMethod = Literal["fork", "exec"]
SPAWN_METHODS: Final = ("fork", "exec")
WORKER_MODULE: Final = "qkt.worker"
NOTIFY_SECTION: Final = "notify"


@dataclass(frozen=True, slots=True)
class PortRange:
    """The inclusive range `--worker-ports LO-HI` takes workers' status ports from."""

    lo: int
    hi: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """Parse `9100-9199`; ConfigError saying what is wrong."""
        lo_text, dash, hi_text = text.strip().partition("-")
        try:
            lo, hi = int(lo_text), int(hi_text if dash else lo_text)
        except ValueError:
            raise ConfigError(f"bad port range {text!r}: expected LO-HI, e.g. 9100-9199") from None
        if not 1 <= lo <= hi <= 65535:
            raise ConfigError(f"bad port range {text!r}: need 1 <= LO <= HI <= 65535")
        return cls(lo, hi)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.lo, self.hi + 1))

    def __str__(self) -> str:
        return f"{self.lo}-{self.hi}"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How the daemon starts, watches and stops workers."""

    module: str = WORKER_MODULE  # `python -m MODULE SPEC` / `MODULE.run_worker(spec)`
    spawn: SpawnMethod = "fork"  # fork server, or a plain interpreter per worker
    bind: str = "127.0.0.1"
    ports: PortRange | None = None  # None: ephemeral ports
    ready_timeout_s: float = 30.0
    stop_timeout_ms: int = 5000  # grace before SIGKILL (as `qkt stop --timeout`)
    # No heartbeat for this long (stretched by the box's load) and the worker is hung.
    hang_timeout_s: float = 20.0
    log_tail: int = 20  # log lines kept in a crashed worker's status


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Everything `qkt daemon` runs with."""

    state: StateDir
    load_dir: Path | None = None
    control_port: int = 0
    feed: FeedOptions = field(default_factory=FeedOptions)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    deploy_concurrency: int = 8  # deploys at start (load dir, redeploys) run this many at once
    # Workers starting at once (deploys and restarts): a spawn costs a core for a while.
    spawn_concurrency: int = field(default_factory=lambda: max(2, 2 * (os.cpu_count() or 1)))
    brake: BrakeSettings = field(default_factory=BrakeSettings)
    control_connections: int = 64  # control-plane connections at once (TCP and Unix socket)
    control_header_timeout_s: float = 10.0  # to send a whole request, or be disconnected
    logs: LogRotation = field(default_factory=LogRotation)  # the daemon's log and its workers'
    tick_s: float = 0.2
    risk: RiskSettings = field(default_factory=RiskSettings)
    history_wait_s: float = 60.0  # a deploy waits at most this for its keys' history
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # alert channels (`[notify.*]`)


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


def load_config(
    state: StateDir,
    file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> DaemonConfig:
    """The config of `file`'s settings with `flags` over them (a None flag is not given).

    The file's `[notify]` part (alert channels) is read by qkt.notify, its secrets from `env`
    (default: the process environment); a mistake there is a NotifyConfigError naming the key.
    """
    settings = read_config_file(file) if file is not None else {}
    settings.update({k: v for k, v in (flags or {}).items() if v is not None})
    config = build_config(state, settings)
    if file is None:
        return config
    notify = load_notify_config(file, os.environ if env is None else env, state.root)
    return replace(config, notify=notify)


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML file as `{"section.key": value}`; ConfigError on any mistake."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    settings: dict[str, Any] = {}
    for section, table in raw.items():
        if section == NOTIFY_SECTION:
            continue  # alert channels: `load_notify_config` reads and checks them
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section!r} must be a [section]")
        for name, value in _flat(section, table):
            settings[name] = _checked(name, value, where=f"{path}: ")
    load_dir = settings.get("daemon.load_dir")
    if isinstance(load_dir, str):
        # Relative to the file, not to wherever the daemon happens to be started.
        settings["daemon.load_dir"] = str((path.parent / load_dir).absolute())
    return settings


def _flat(section: str, table: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """`{"section.key": value}` pairs of a table; a sub-table (`[risk.default]`) is a section
    of its own, `risk.default.key`."""
    for key, value in table.items():
        if isinstance(value, dict) and f"{section}.{key}" in SUBSECTIONS:
            yield from _flat(f"{section}.{key}", value)
        else:
            yield f"{section}.{key}", value


def _checked(name: str, value: Any, where: str = "") -> Any:
    """`value` as setting `name` takes it; ConfigError naming the key otherwise."""
    key = KEYS.get(name)
    if key is None:
        known = ", ".join(each for each, key in KEYS.items() if not key.obsolete)
        raise ConfigError(f"{where}unknown setting {name} (known: {known})")
    if key.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if key.number_as_text and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, key.kind) or (isinstance(value, bool) and key.kind is not bool):
        raise ConfigError(f"{where}{name} must be a {key.kind.__name__}, got {value!r}")
    reason = key.check(value) if key.check is not None else None
    if reason is not None:
        raise ConfigError(f"{where}{name} {reason}, got {value!r}")
    return value


def build_config(state: StateDir, settings: Mapping[str, Any]) -> DaemonConfig:
    """A DaemonConfig from `{"section.key": value}`; every key and value checked."""
    s = {name: _checked(name, value) for name, value in settings.items()}
    try:
        return _build(state, s)
    except ValueError as error:  # a section's own rule across keys (the restart policy)
        raise ConfigError(str(error)) from None


def _build(state: StateDir, s: Mapping[str, Any]) -> DaemonConfig:
    def section(prefix: str, names: dict[str, str]) -> dict[str, Any]:
        """The given settings of a section as its dataclass's keyword arguments."""
        return {attr: s[f"{prefix}.{key}"] for key, attr in names.items() if f"{prefix}.{key}" in s}

    same = {name: name for name in ("seed", "speed")}
    feed = FeedOptions(
        **section("sim", same),
        **section(
            "bybit",
            {
                "spot_url": "bybit_spot_url",
                "linear_url": "bybit_linear_url",
                "rest_url": "bybit_rest_url",
            },
        ),
        sim_clock_file=state.root / "sim-clock.json",  # the SIM market continues after a restart
    )
    worker_keys = (
        "bind",
        "module",
        "ready_timeout_s",
        "stop_timeout_ms",
        "hang_timeout_s",
    )
    ports = s.get("workers.ports")
    workers = WorkerSettings(
        **section("workers", {key: key for key in worker_keys}),
        **section("daemon", {"spawn": "spawn"}),
        ports=PortRange.parse(ports) if ports else None,
    )
    restart_keys = ("attempts", "window_s", "backoff_s", "backoff_max_s")
    restart = RestartPolicy(**section("restart", {key: key for key in restart_keys}))
    brake_keys = {f"brake_{key}": key for key in ("crashes", "window_s", "pause_s")}
    brake = BrakeSettings(**section("restart", brake_keys))
    load_dir = s.get("daemon.load_dir")
    logs = LogRotation(
        max_bytes=int(s.get("logs.max_mb", LogRotation().max_bytes / MB) * MB),
        backups=s.get("logs.backups", LogRotation().backups),
    )
    return DaemonConfig(
        risk=risk_settings(s),
        state=state,
        load_dir=Path(load_dir).absolute() if load_dir else None,
        feed=feed,
        workers=workers,
        restart=restart,
        brake=brake,
        logs=logs,
        **section(
            "daemon",
            {
                key: key
                for key in (
                    "control_port",
                    "deploy_concurrency",
                    "spawn_concurrency",
                    "control_connections",
                    "control_header_timeout_s",
                    "history_wait_s",
                )
            },
        ),
    )
