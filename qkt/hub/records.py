"""What the hub knows about a key beyond its candles: its history (warm?) and its feed (live?).

Typed records the daemon reads (`CandleHub.history(key)`, `CandleHub.freshness(key)`) to show
`warm`, `warmup_candles`, the history source and `stale` per strategy, and the events it can
subscribe to (`CandleHub.add_listener`) for alerts.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Warmth(enum.Enum):
    """Where a key's backfill is."""

    BACKFILLING = "backfilling"  # the history fetch is running
    WARM = "warm"  # the ring holds as much closed history as was asked for
    PARTIAL = "partial"  # history came, but fewer candles than asked (a young market, a cap)
    COLD = "cold"  # no history: no source, or it failed (`reason`); warms on live candles


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """A key's backfill: how many closed candles were asked for and how many the ring got.

    `candles` counts history put in the ring at backfill; `available` is what the ring holds now
    (history and live), which is what a strategy asking for N candles of warm-up receives.
    """

    key: str
    state: Warmth
    wanted: int
    candles: int
    available: int
    source: str | None  # `sim`, `bybit-rest`; None when the feed has no history source
    reason: str | None = None  # why it is not warm (one line for a user)

    @property
    def warm(self) -> bool:
        """True once the ring holds every candle asked for."""
        return self.state is Warmth.WARM

    def missing(self, need: int) -> int:
        """How many of `need` candles of warm-up the ring still lacks."""
        return max(0, need - self.available)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["state"] = self.state.value
        body["warm"] = self.warm
        return body


@dataclass(frozen=True, slots=True)
class KeyFreshness:
    """Whether a key's feed is live: `stale` when its feed is not connected, or when no candle
    came for longer than the key's cadence allows."""

    key: str
    stale: bool
    feed_state: str
    last_candle_age_ms: int | None  # wall ms since the last candle was published (None: none)
    cadence_ms: int  # wall ms between candles expected (timeframe / market speed)
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """A key went stale or came back live (published to `CandleHub.add_listener` callbacks)."""

    key: str
    stale: bool
    reason: str  # "feed reconnecting", "no candle for 95 s (cadence 60 s)", "live again"
    last_candle_age_ms: int | None
    at_ms: int  # wall clock, epoch ms

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class KeyStats:
    """One key's line in the control plane's `GET /hub`."""

    key: str
    subscribers: int
    candles_published: int
    last_close_ts: int | None  # close time (epoch ms) of the last published candle
    feed_state: str
    last_message_age_ms: int | None  # how long ago the broker's feed last heard upstream
    seq: int
    duplicates_dropped: int
    warm: bool = False
    history_candles: int = 0  # closed candles put in the ring by the backfill
    history_source: str | None = None
    history_reason: str | None = None  # why it is not warm
    stale: bool = False
    last_candle_age_ms: int | None = None  # wall ms since this key's last candle

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
