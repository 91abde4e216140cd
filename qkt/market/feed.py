"""The one contract the hub sees of market data: a per-broker feed of closed candles.

A `CandleFeed` owns everything exchange-specific: the upstream connection, one upstream
subscription per symbol however many timeframes of it are wanted (higher timeframes are derived
from the lowest one, or from trades), aggregation, and the rule that a candle closes exactly once
(when a later trade/kline arrives or when its end passes on the feed's clock; empty buckets are
not invented). The hub above it only ref-counts keys, numbers and fans out what comes out.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from qkt.market.models import Candle, CandleKey


class FeedState(enum.Enum):
    """Where a feed's upstream connection is; surfaced in `/hub` as `feed_state`."""

    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"  # connected, but nothing heard for longer than `stale_after_s`
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """A feed's health at one moment."""

    state: FeedState
    last_message_age_ms: int | None  # None: nothing received yet
    reconnects: int = 0


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """Everything a feed may be configured with; each feed reads the fields it needs."""

    # SIM: the seeded random walk and its clock (market seconds per wall second).
    seed: int = 0
    speed: float = 1.0
    sim_start_ms: int | None = None  # None: continue `sim_clock_file`, else the wall clock's now
    sim_clock_file: Path | None = None  # where the market clock's origin is kept across restarts
    # BYBIT: v5 public websocket endpoints (tests point them at a local fake exchange).
    bybit_spot_url: str = "wss://stream.bybit.com/v5/public/spot"
    bybit_linear_url: str = "wss://stream.bybit.com/v5/public/linear"
    # BYBIT history: the v5 REST base (GET /v5/market/kline), per-request timeout and retries.
    bybit_rest_url: str = "https://api.bybit.com"
    rest_timeout_s: float = 10.0
    rest_retries: int = 4
    rest_backoff_s: float = 1.0  # first retry / rate-limit pause; doubles per attempt
    ping_interval_s: float = 20.0
    stale_after_s: float = 30.0
    # Reconnect backoff: doubles from `reconnect_initial_s` up to `reconnect_max_s`, with jitter.
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    # BACKTEST: a candle CSV, a folder of <SYMBOL>.csv, or a qkt 0.13 tick data root.
    data_path: Path | None = None


class CandleFeed(Protocol):
    """One broker's market data as the closed candles of the keys currently subscribed.

    All methods are called from one asyncio event loop. `subscribe`/`unsubscribe` may be called
    at any time, also while `candles()` is being iterated; they are idempotent per key.
    """

    @property
    def broker(self) -> str:
        """The broker name this feed serves (`SIM`, `BYBIT`, ...)."""
        ...

    def subscribe(self, key: CandleKey) -> None:
        """Start producing closed candles of `key` (the first key of a symbol opens upstream)."""
        ...

    def unsubscribe(self, key: CandleKey) -> None:
        """Stop producing `key` (the last key of a symbol unsubscribes upstream)."""
        ...

    def candles(self) -> AsyncIterator[Candle]:
        """Run the feed and yield every closed candle of a subscribed key exactly once.

        Per key, candles come in open-time order. Candles closing at the same instant come
        shorter timeframe first (the order in which derived candles close). Runs until
        `aclose()`; never raises for bad upstream data (logged once and skipped).
        """
        ...

    def status(self) -> FeedStatus:
        """The feed's state and how long ago it last heard from upstream."""
        ...

    async def aclose(self) -> None:
        """Close upstream connections and end `candles()`."""
        ...
