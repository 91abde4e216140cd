"""The simulated market's clock: market time running `speed` times the wall clock, restartable.

A daemon restarted on the same state dir continues the market where the previous one would be
now: the clock's origin (market ms, wall ms, speed) is kept in a small JSON file (written temp +
rename), so market time never runs backwards across restarts and strategies whose journals
remember the last candle keep receiving newer ones.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson

from qkt.atomic import write_atomic
from qkt.errors import UserError

log = logging.getLogger(__name__)


class MarketClock:
    """Market time that runs `speed` times faster than the wall clock from `start_ms`."""

    def __init__(self, start_ms: int, speed: float) -> None:
        if not speed > 0:
            raise UserError(
                f"--speed must be greater than 0 (market seconds per second), not {speed}"
            )
        self.start_ms = start_ms
        self.speed = speed
        self._t0: float | None = None

    def start(self) -> None:
        """Let market time run (it stands at `start_ms` until then)."""
        if self._t0 is None:
            self._t0 = time.monotonic()

    def now_ms(self) -> int:
        """The market's current time, epoch ms."""
        if self._t0 is None:
            return self.start_ms
        return self.start_ms + int((time.monotonic() - self._t0) * self.speed * 1000)

    def wall_seconds(self, market_ms: int) -> float:
        """Wall seconds that `market_ms` of market time take."""
        return market_ms / 1000 / self.speed


def start_ms_for(clock_file: Path | None, speed: float, wall_ms: int | None = None) -> int:
    """Where market time starts: the previous origin moved on by the wall time since, or now.

    Records the origin used (so the next start continues from it). A missing or unreadable file
    starts at the wall clock (logged when unreadable); a file that cannot be written is logged,
    never fatal: the market still runs, it just cannot be continued.
    """
    now = wall_ms if wall_ms is not None else time.time_ns() // 10**6
    start = now
    if clock_file is not None and clock_file.exists():
        try:
            saved = orjson.loads(clock_file.read_bytes())
            market_ms, saved_wall, saved_speed = (
                int(saved["market_ms"]),
                int(saved["wall_ms"]),
                float(saved["speed"]),
            )
            start = market_ms + int(max(now - saved_wall, 0) * saved_speed)
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning(
                "simulated clock %s unreadable (%s); starting at wall time", clock_file, error
            )
    if clock_file is not None:
        body = {"market_ms": start, "wall_ms": now, "speed": speed}
        try:
            write_atomic(clock_file, orjson.dumps(body) + b"\n", mode=0o600)
        except OSError as error:
            log.warning("cannot record the simulated clock in %s: %s", clock_file, error)
    return start
