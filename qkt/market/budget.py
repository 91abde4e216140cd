"""RequestBudget: one pace for every REST request of the process (token bucket + pause).

Bybit counts requests per IP, and every key the hub backfills shares that IP, so the budget is
process-wide (`SHARED_BUDGET`) rather than per source. A rate-limit answer pauses every request
for a while, not just the one that got it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

# Bybit allows 600 requests per 5 s per IP; staying at a sixth leaves room for anything else
# on the box (another daemon, a `qkt fetch`) and for the exchange counting differently.
DEFAULT_REQUESTS: Final = 100
DEFAULT_PER_S: Final = 5.0


class RequestBudget:
    """At most `requests` requests per `per_s` seconds, smoothed; `pause` stops all for a while."""

    def __init__(self, requests: int = DEFAULT_REQUESTS, per_s: float = DEFAULT_PER_S) -> None:
        if requests < 1 or per_s <= 0:
            raise ValueError("a request budget needs requests >= 1 and per_s > 0")
        self.capacity = requests
        self.rate = requests / per_s  # tokens per second
        self._tokens = float(requests)
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self.taken = 0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_s(self) -> float:
        """Seconds until a request may go (0: now)."""
        now = time.monotonic()
        self._refill(now)
        pause = max(0.0, self._paused_until - now)
        need = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
        return max(pause, need)

    async def take(self) -> None:
        """Wait until a request may go, and count it."""
        while (delay := self.wait_s()) > 0:
            await asyncio.sleep(delay)
        self._tokens -= 1
        self.taken += 1

    def pause(self, seconds: float) -> None:
        """No request goes for `seconds` (a rate-limit answer came back)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


SHARED_BUDGET: Final = RequestBudget()
