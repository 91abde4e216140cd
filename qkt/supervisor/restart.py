"""RestartPolicy: how often a crashed worker is restarted, and how long to wait before each try."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Restart a crashed worker after an exponential backoff, at most `attempts` times per window.

    circus calls this flapping detection: a worker that crashes more than `attempts` times within
    `window_s` seconds is left `crashed` (and says so) instead of looping forever. A worker that
    stays up longer than the window starts again with a clean record.
    """

    attempts: int = 5
    window_s: float = 60.0
    backoff_s: float = 1.0  # wait before the first restart; doubles with each recent crash
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError(f"restart attempts must be >= 0, got {self.attempts}")
        if self.window_s <= 0 or self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise ValueError("restart window must be > 0 and 0 <= backoff_s <= backoff_max_s")

    def recent(self, crashes: Sequence[float], now: float) -> list[float]:
        """The crash times (monotonic seconds) that still count: those within the window."""
        return [t for t in crashes if now - t <= self.window_s]

    def delay(self, crashes: Sequence[float], now: float) -> float | None:
        """Seconds to wait before restarting after the latest crash, or None to give up.

        `crashes` includes the crash just seen; the first one waits `backoff_s`, the next twice
        that, and so on up to `backoff_max_s`.
        """
        count = len(self.recent(crashes, now))
        if count == 0:
            return 0.0
        if count > self.attempts:
            return None
        return float(min(self.backoff_s * 2.0 ** (count - 1), self.backoff_max_s))

    def describe(self) -> str:
        """The limit in words, for the message of a worker that was given up on."""
        return f"{self.attempts} restarts within {self.window_s:g} s"
