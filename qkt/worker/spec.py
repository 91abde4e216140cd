"""`WorkerSpec`: the only contract between a supervisor (or `qkt run`) and a worker process.

It travels as JSON (argv of `python -m qkt.worker`, or a message to the fork server), so every
field is a plain value; money travels as decimal strings. Bump `SPEC_VERSION` on any change that
an older worker could misread.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson

from qkt.paths import StateDir

SPEC_VERSION: Final = 2  # 2: the spec carries the source text (compile once, at deploy)


def source_hash(source: str) -> str:
    """sha256 (hex) of a source text's UTF-8 bytes: equal to the file's hash if unchanged."""
    return hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()


class SpecError(ValueError):
    """A spec that cannot be read: wrong version, missing or unknown fields."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs to run one strategy."""

    name: str
    file: str  # absolute path of the .qkt file: names it in messages, never read by a worker
    # The exact text the supervisor compiled when the strategy was deployed: the worker compiles
    # this, so a restart runs the deployed rules even if the file was edited since.
    source: str
    state_dir: str
    # The hub's endpoints (ipc:// or tcp://); the worker subscribes to its program's keys.
    hub_pub: str
    hub_snapshot: str
    # Status server: where to bind. port 0 = ephemeral; the bound port is written to `port_file`.
    bind: str = "127.0.0.1"
    port: int = 0
    observe: bool = True  # False: no status server (`qkt run --no-observe`)
    # Paper account.
    balance: str = "10000"
    fee_bps: str = "0"
    slippage_bps: str = "0"
    fill_at: str = "close"  # "close" of the signalling candle, or "next_open"
    sim: bool = False  # put every stream on the SIM broker, whatever the file says
    warmup: int = 500  # closed candles per key asked from the hub's snapshot on start
    events_capacity: int = 1000
    # Risk (docs/risk.md): limit flag values by name ({"max_daily_loss": "250"}, "off" allowed),
    # `--leverage`, `--margin on|off`, and a halt the daemon recorded (HaltInfo JSON) that the
    # worker applies at start if its journal does not hold one (a daemon restart re-applies it).
    limits: dict[str, str] = field(default_factory=dict)
    leverage: str = "1"
    margin: bool = True
    halt: dict[str, Any] | None = None
    # Under a daemon: the pid to watch (exit when it dies), the bearer token file for POST routes.
    parent_pid: int | None = None
    token_file: str | None = None
    version: int = SPEC_VERSION

    @property
    def state(self) -> StateDir:
        return StateDir(Path(self.state_dir))

    @property
    def source_hash(self) -> str:
        return source_hash(self.source)

    @property
    def port_file(self) -> Path:
        """Where the worker writes `<port>` (atomically) once its status server answers."""
        return self.state.strategy_dir(self.name) / "status.port"

    @property
    def log_file(self) -> Path:
        return self.state.log_file(self.name)

    @property
    def journal_file(self) -> Path:
        return self.state.journal(self.name)

    def money(self, field: str) -> Decimal:
        """One of the money fields as a Decimal."""
        return Decimal(getattr(self, field))

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> WorkerSpec:
        """Parse a spec, refusing other versions and unknown fields (a newer supervisor)."""
        try:
            raw: Any = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise SpecError(f"worker spec is not JSON: {error}") from None
        if not isinstance(raw, dict):
            raise SpecError("worker spec must be a JSON object")
        if raw.get("version") != SPEC_VERSION:
            raise SpecError(
                f"worker spec version {raw.get('version')!r}, this worker reads {SPEC_VERSION}"
            )
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SpecError(f"unknown worker spec fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**raw)
        except TypeError as error:
            raise SpecError(f"bad worker spec: {error}") from None
