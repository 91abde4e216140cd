"""The history contract: closed candles of a key over a past range, from a feed's history source.

A `HistorySource` answers "the closed candles of K with open time in [start, end)" page by page,
oldest first, each candle exactly once, and never a candle that has not closed yet on the source's
own clock (`now_ms`). The hub backfills a key's ring from it on acquire and closes the gap between
history and the live stream with it; `qkt fetch` writes it to a CSV. Feeds that have one return it
from `history_source()` (`HasHistory`); a feed without one starts its keys cold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Final, Protocol, runtime_checkable

from qkt.market.models import Candle, CandleKey

MAX_HISTORY: Final = 5_000  # candles a key may ask for at most (the default cap)


class HistoryError(Exception):
    """History could not be had; `reason` is one line for a user (never a secret or a URL query).

    `permanent` says retrying will not help (an unknown symbol, a timeframe the source lacks),
    as opposed to a network failure or a rate limit that outlasted the retries.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class HistorySource(Protocol):
    """Closed past candles of one broker's keys."""

    @property
    def name(self) -> str:
        """What `status` shows as the history source, e.g. `sim` or `bybit-rest`."""
        ...

    def now_ms(self) -> int:
        """The source's clock (market time for SIM, the exchange's time for Bybit), epoch ms."""
        ...

    def pages(self, key: CandleKey, start_ms: int, end_ms: int) -> AsyncIterator[list[Candle]]:
        """The closed candles of `key` with `start_ms <= open_ms < end_ms`, oldest first, in pages.

        Raises HistoryError when a page cannot be had (after the source's own bounded retries).
        Buckets without trades have no candle, so a range may hold fewer than its length allows.
        """
        ...

    async def aclose(self) -> None:
        """Release connections (idempotent)."""
        ...


@runtime_checkable
class HasHistory(Protocol):
    """A feed that can also serve its keys' past."""

    def history_source(self) -> HistorySource:
        """The feed's history source (one per feed; shared by every key of the feed)."""
        ...


async def fetch_all(
    source: HistorySource, key: CandleKey, start_ms: int, end_ms: int
) -> list[Candle]:
    """Every page of `source.pages(...)` as one list, checked to be ascending and unique."""
    out: list[Candle] = []
    async for page in source.pages(key, start_ms, end_ms):
        out.extend(page)
    return ascending_unique(out)


def ascending_unique(candles: Sequence[Candle]) -> list[Candle]:
    """`candles` sorted by open time with repeats of an open time dropped (first one kept)."""
    out: list[Candle] = []
    for candle in sorted(candles, key=lambda c: c.open_ms):
        if out and out[-1].open_ms == candle.open_ms:
            continue
        out.append(candle)
    return out


def last_closed_end(key: CandleKey, now_ms: int) -> int:
    """The end of the newest candle of `key` closed at `now_ms` (the start of the forming one)."""
    return key.timeframe.bucket(now_ms)


def range_for(key: CandleKey, count: int, end_ms: int) -> tuple[int, int]:
    """The [start, end) range of the last `count` buckets of `key` ending at `end_ms` (aligned)."""
    end = key.timeframe.bucket(end_ms)
    return end - count * key.timeframe.ms, end
