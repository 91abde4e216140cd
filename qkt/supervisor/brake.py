"""RestartBrake: when many workers crash within a window, pause every automatic restart.

One worker crashing is that worker's problem, and its own backoff handles it. Many crashing at
once is the box's problem (memory, a full disk, a dead feed, a load spike): restarting them all
adds load where there is none to spare, and a restart storm follows. So the brake counts crashes
across every worker; at `crashes` within `window_s`, automatic restarts pause (the strategies wait
in `backoff`) until no crash has been seen for `pause_s`. Entering and leaving the pause are
logged once each; `GET /health` says why restarts are paused while they are.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrakeSettings:
    """`[restart]` brake_crashes, brake_window_s, brake_pause_s."""

    crashes: int = 10
    window_s: float = 60.0
    pause_s: float = 60.0


class RestartBrake:
    """Counts crashes box-wide and says whether restarts may go ahead."""

    def __init__(self, settings: BrakeSettings) -> None:
        self._settings = settings
        self._crashes: deque[float] = deque()
        self._paused_at: float | None = None
        self.reason: str | None = None  # why restarts are paused, while they are

    def crashed(self, now: float) -> None:
        """One worker crashed (or was killed as hung) at `now` (monotonic)."""
        s = self._settings
        self._crashes.append(now)
        while self._crashes and now - self._crashes[0] > s.window_s:
            self._crashes.popleft()
        if self._paused_at is None and len(self._crashes) >= s.crashes:
            self._paused_at = now
            self.reason = (
                f"{len(self._crashes)} workers crashed within {s.window_s:g} s: automatic "
                f"restarts are paused until none crashes for {s.pause_s:g} s"
            )
            log.error("%s", self.reason)

    def allows(self, now: float) -> bool:
        """May a restart start now?"""
        if self._paused_at is None:
            return True
        last = self._crashes[-1] if self._crashes else self._paused_at
        if now - last < self._settings.pause_s:
            return False
        log.warning("no crash for %g s: automatic restarts resume", self._settings.pause_s)
        self._paused_at, self.reason = None, None
        self._crashes.clear()
        return True
