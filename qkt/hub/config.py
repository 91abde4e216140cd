"""HubConfig: how a hub binds its sockets, how much history it keeps and fetches, its timings.

A frozen record of its own: the daemon and `qkt run` build it, and both the hub and its feed
intake (intake.py) read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from qkt.hub.endpoints import Transport
from qkt.hub.publisher import DEFAULT_SNDHWM
from qkt.hub.snapshot import DEFAULT_HISTORY, DEFAULT_HOLD_S

DEFAULT_BACKFILL = 500  # closed candles backfilled per key unless acquire asks otherwise


@dataclass(frozen=True, slots=True)
class HubConfig:
    """How a hub binds and how much it remembers."""

    history: int = DEFAULT_HISTORY  # candles kept per key for snapshots and gap repair
    sndhwm: int = DEFAULT_SNDHWM
    transport: Transport = "auto"  # auto: ipc in the state dir if the paths fit, else tcp
    tcp_host: str = "127.0.0.1"
    close_timeout_s: float = 5.0
    backfill: int = DEFAULT_BACKFILL  # history per key when `acquire` does not say
    backfill_timeout_s: float = 120.0  # one history fetch, all its pages and retries
    snapshot_hold_s: float = DEFAULT_HOLD_S  # a snapshot of a key being backfilled waits this
    freshness_interval_s: float = 0.25  # how often every key's staleness is judged

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValueError(f"hub history must keep at least 1 candle per key, got {self.history}")
        if self.sndhwm < 0 or self.close_timeout_s <= 0:
            raise ValueError("hub sndhwm must be >= 0 and close_timeout_s > 0")
