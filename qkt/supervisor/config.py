"""DaemonConfig: every daemon setting, from defaults, a TOML file (`--config`) and flags.

Flags win over the file, the file over the defaults. The file's sections and keys:

    [daemon]   load_dir, control_port, spawn ("fork" | "exec"), deploy_concurrency
    [sim]      seed, speed
    [bybit]    spot_url, linear_url
    [workers]  bind, ports ("LO-HI"), ready_timeout_s, stop_timeout_ms, ping_interval_s,
               ping_timeout_s, ping_failures, module
    [restart]  attempts, window_s, backoff_s, backoff_max_s
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from qkt.market.feed import FeedOptions
from qkt.paths import StateDir
from qkt.supervisor.errors import ConfigError
from qkt.supervisor.restart import RestartPolicy

SpawnMethod = Literal["fork", "exec"]
SPAWN_METHODS: Final = ("fork", "exec")
WORKER_MODULE: Final = "qkt.worker"


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
    stop_timeout_s: float = 5.0
    ping_interval_s: float = 2.0
    ping_timeout_s: float = 2.0
    ping_failures: int = 3  # consecutive unanswered /health pings that make a worker hung
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
    tick_s: float = 0.2


# (section, key) -> the type the value must have. One table, so the file is checked in one place.
_SCHEMA: Final[dict[tuple[str, str], type]] = {
    ("daemon", "load_dir"): str,
    ("daemon", "control_port"): int,
    ("daemon", "spawn"): str,
    ("daemon", "deploy_concurrency"): int,
    ("sim", "seed"): int,
    ("sim", "speed"): float,
    ("bybit", "spot_url"): str,
    ("bybit", "linear_url"): str,
    ("workers", "bind"): str,
    ("workers", "ports"): str,
    ("workers", "module"): str,
    ("workers", "ready_timeout_s"): float,
    ("workers", "stop_timeout_ms"): int,
    ("workers", "ping_interval_s"): float,
    ("workers", "ping_timeout_s"): float,
    ("workers", "ping_failures"): int,
    ("restart", "attempts"): int,
    ("restart", "window_s"): float,
    ("restart", "backoff_s"): float,
    ("restart", "backoff_max_s"): float,
}


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
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section!r} must be a [section]")
        for key, value in table.items():
            if (section, key) not in _SCHEMA:
                known = ", ".join(f"{s}.{k}" for s, k in _SCHEMA)
                raise ConfigError(f"{path}: unknown setting {section}.{key} (known: {known})")
            settings[f"{section}.{key}"] = _typed(path, section, key, value)
    load_dir = settings.get("daemon.load_dir")
    if isinstance(load_dir, str):
        # Relative to the file, not to wherever the daemon happens to be started.
        settings["daemon.load_dir"] = str((path.parent / load_dir).absolute())
    return settings


def _typed(path: Path, section: str, key: str, value: Any) -> Any:
    want = _SCHEMA[(section, key)]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, want) or isinstance(value, bool):
        raise ConfigError(f"{path}: {section}.{key} must be a {want.__name__}, got {value!r}")
    return value


def build_config(state: StateDir, settings: Mapping[str, Any]) -> DaemonConfig:
    """A DaemonConfig from `{"section.key": value}` (file values updated with flags)."""
    s = dict(settings)
    spawn = s.get("daemon.spawn", "fork")
    if spawn not in SPAWN_METHODS:
        raise ConfigError(f"spawn must be 'fork' or 'exec', got {spawn!r}")
    control_port = int(s.get("daemon.control_port", 0))
    if not 0 <= control_port <= 65535:
        raise ConfigError(f"control port must be 0..65535, got {control_port}")
    speed = float(s.get("sim.speed", 1.0))
    if not speed > 0:
        raise ConfigError(
            f"--speed must be greater than 0 (market seconds per second), not {speed}"
        )
    defaults = FeedOptions()
    feed = FeedOptions(
        seed=int(s.get("sim.seed", 0)),
        speed=speed,
        sim_clock_file=state.root / "sim-clock.json",  # the SIM market continues after a restart
        bybit_spot_url=str(s.get("bybit.spot_url", defaults.bybit_spot_url)),
        bybit_linear_url=str(s.get("bybit.linear_url", defaults.bybit_linear_url)),
    )
    ports = s.get("workers.ports")
    base = WorkerSettings()
    workers = WorkerSettings(
        module=str(s.get("workers.module", base.module)),
        spawn=spawn,
        bind=str(s.get("workers.bind", base.bind)),
        ports=PortRange.parse(ports) if ports else None,
        ready_timeout_s=_positive(s, "workers.ready_timeout_s", base.ready_timeout_s),
        stop_timeout_s=_positive(s, "workers.stop_timeout_ms", base.stop_timeout_s * 1000) / 1000,
        ping_interval_s=_positive(s, "workers.ping_interval_s", base.ping_interval_s),
        ping_timeout_s=_positive(s, "workers.ping_timeout_s", base.ping_timeout_s),
        ping_failures=int(_positive(s, "workers.ping_failures", base.ping_failures)),
    )
    policy = RestartPolicy()
    try:
        restart = RestartPolicy(
            attempts=int(s.get("restart.attempts", policy.attempts)),
            window_s=float(s.get("restart.window_s", policy.window_s)),
            backoff_s=float(s.get("restart.backoff_s", policy.backoff_s)),
            backoff_max_s=float(s.get("restart.backoff_max_s", policy.backoff_max_s)),
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    load_dir = s.get("daemon.load_dir")
    return DaemonConfig(
        state=state,
        load_dir=Path(load_dir).absolute() if load_dir else None,
        control_port=control_port,
        feed=feed,
        workers=workers,
        restart=restart,
        deploy_concurrency=int(_positive(s, "daemon.deploy_concurrency", 8)),
    )


def _positive(settings: Mapping[str, Any], name: str, default: float) -> float:
    value = float(settings.get(name, default))
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, got {value:g}")
    return value
