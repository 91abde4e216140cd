"""DaemonConfig: every daemon setting, from defaults, a TOML file (`--config`) and flags.

`load_config(state, file, flags)` is the one way to build it: the file's settings, then the
flags over them, every key checked against `KEYS` (a misspelt key is an error naming it, from
the file or from code), every value against its type and range, then one frozen DaemonConfig.
Defaults live once, in the dataclasses (daemonconfig.py and each section's own); a setting left
out keeps its default.

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

A new setting is one `KEYS` entry (its type and check, in configkeys.py) and one field of its
section's dataclass (DaemonConfig and WorkerSettings are in daemonconfig.py), read in `_build`;
a new section is a new dataclass and its keys.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from qkt.log import MB, LogRotation
from qkt.market.feed import FeedOptions
from qkt.notify import load_notify_config
from qkt.paths import StateDir
from qkt.supervisor.brake import BrakeSettings
from qkt.supervisor.configkeys import KEYS as KEYS
from qkt.supervisor.daemonconfig import DaemonConfig as DaemonConfig
from qkt.supervisor.daemonconfig import PortRange as PortRange
from qkt.supervisor.daemonconfig import WorkerSettings as WorkerSettings
from qkt.supervisor.errors import ConfigError
from qkt.supervisor.restart import RestartPolicy
from qkt.supervisor.riskconfig import SUBSECTIONS, risk_settings

NOTIFY_SECTION: Final = "notify"


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
