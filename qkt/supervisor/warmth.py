"""Each strategy's keys as the hub sees them: history asked and had (warm or warming), and
whether the feed is live (stale otherwise); plus the per-key gauges of the daemon's `/metrics`.

The hub does the work (backfill once per key, freshness judged per key, docs/hub.md); the
daemon asks it for as much history as the program needs (`Program.history_needed()`), waits a
bounded time for the backfill before it starts a worker (so the worker's snapshot is its
warm-up), and shows the result per strategy: `warming` with the count still missing and why,
`stale` with the last candle's age.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from qkt.hub import DEFAULT_BACKFILL, CandleHub, HubError
from qkt.market.models import CandleKey
from qkt.supervisor.errors import NotWarmError
from qkt.supervisor.records import HubKey, KeyFeed

log = logging.getLogger(__name__)

Needs = Mapping[CandleKey, int]  # closed candles of history each key needs
HISTORY_WAIT_S: Final = 60.0  # a deploy waits at most this for its keys' backfill


def hub_history(need: int) -> int:
    """What to ask the hub for a key needing `need`: never less than its default, so a key a
    first strategy barely needs is still warm for the next one (history cannot be prepended
    to a key once it streams)."""
    return max(need, DEFAULT_BACKFILL)


def worker_warmup(needs: Needs) -> int:
    """Past candles a worker asks the hub's snapshot for, per key: the most any key needs."""
    return max(needs.values(), default=0)


async def await_history(hub: CandleHub, keys: Sequence[CandleKey], timeout_s: float) -> None:
    """Wait until every key's backfill is over (warm, partial or failed), at most `timeout_s`;
    past that the worker starts anyway and warms on what comes (never an error)."""
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(hub.backfilled(key) for key in keys))
    except TimeoutError:
        log.warning("history for %s not there after %.0f s", ", ".join(map(str, keys)), timeout_s)


def key_feeds(hub: CandleHub | None, needs: Needs) -> list[KeyFeed]:
    """One KeyFeed per key the hub holds (a failed strategy's released keys are left out)."""
    feeds = []
    for key, need in needs.items():
        if hub is None:
            continue
        try:
            history = hub.history(key)
            fresh = hub.freshness(key)
        except HubError:
            continue
        missing = history.missing(need)
        feeds.append(
            KeyFeed(
                key=str(key),
                needed=need,
                history=history.state.value,
                candles=history.available,
                missing=missing,
                source=history.source,
                reason=(history.reason or fresh.reason) if missing else None,
                stale=fresh.stale,
                last_candle_age_ms=fresh.last_candle_age_ms,
            )
        )
    return feeds


def warming_text(feeds: Sequence[KeyFeed]) -> str | None:
    """`120 of 200 candles missing on SIM:BTCUSDT:1m (reason)`; None when nothing is missing."""
    parts = []
    for feed in feeds:
        if feed.missing <= 0:
            continue
        why = feed.reason or ("history is loading" if feed.history == "backfilling" else None)
        parts.append(
            f"{feed.missing} of {feed.needed} candles missing on {feed.key}"
            + (f" ({why})" if why else "")
        )
    return "; ".join(parts) or None


def is_stale(feeds: Sequence[KeyFeed]) -> bool:
    return any(feed.stale for feed in feeds)


def require_warm(name: str, feeds: Sequence[KeyFeed]) -> None:
    """`deploy --require-warm`: NotWarmError naming what is missing, so nothing is deployed."""
    missing = warming_text(feeds)
    if missing is not None:
        raise NotWarmError(f"{name} is not warm ({missing}); --require-warm: nothing deployed")


class KeyNeeds:
    """The history each deployed strategy needs per key, and its keys' feeds as the hub sees
    them now: the registry's one place for warm and stale."""

    def __init__(self, hub: CandleHub, wait_s: float = HISTORY_WAIT_S) -> None:
        self._hub = hub
        self._needs: dict[str, dict[CandleKey, int]] = {}
        self.wait_s = wait_s

    def set(self, name: str, needs: Mapping[CandleKey, int]) -> None:
        self._needs[name] = dict(needs)

    def forget(self, name: str) -> None:
        self._needs.pop(name, None)

    def acquire_count(self, name: str, key: CandleKey) -> int:
        """Candles to ask the hub for when `name` acquires `key`."""
        return hub_history(self._needs.get(name, {}).get(key, 0))

    def warmup(self, name: str) -> int:
        """The warm-up `name`'s worker asks the hub's snapshot for."""
        return worker_warmup(self._needs.get(name, {}))

    async def settle(self, name: str, keys: Sequence[CandleKey], *, warm: bool) -> None:
        """Wait (bounded) for the keys' backfill; with `warm`, NotWarmError if any lacks."""
        await await_history(self._hub, keys, self.wait_s)
        if warm:
            require_warm(name, self.feeds(name))

    def feeds(self, name: str) -> list[KeyFeed]:
        return key_feeds(self._hub, self._needs.get(name, {}))

    def flags(self, feeds: Sequence[KeyFeed]) -> dict[str, bool | str | None]:
        """The `stale` and `warming` fields of a list entry or a status."""
        return {"stale": is_stale(feeds), "warming": warming_text(feeds)}


class FeedCollector(Collector):
    """`qkt_hub_key_stale`, `qkt_hub_key_warm` and `qkt_hub_key_last_candle_age_seconds` per key."""

    def __init__(self, keys: Callable[[], Sequence[HubKey]]) -> None:
        self._keys = keys

    def collect(self) -> Iterator[Metric]:
        lines = self._keys()
        stale = GaugeMetricFamily(
            "qkt_hub_key_stale", "1 while the key's feed is not live.", labels=["key"]
        )
        warm = GaugeMetricFamily(
            "qkt_hub_key_warm", "1 once the key's ring holds its history.", labels=["key"]
        )
        age = GaugeMetricFamily(
            "qkt_hub_key_last_candle_age_seconds",
            "Seconds since the key's last candle (absent before the first).",
            labels=["key"],
        )
        for line in lines:
            stale.add_metric([line.key], 1.0 if line.stale else 0.0)
            warm.add_metric([line.key], 1.0 if line.warm else 0.0)
            if line.last_candle_age_ms is not None:
                age.add_metric([line.key], line.last_candle_age_ms / 1000)
        yield stale
        yield warm
        yield age
