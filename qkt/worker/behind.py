"""`MarketBehind`: a market whose clock is behind the strategy's journal is said, not ignored.

A strategy takes each candle once: a candle that does not open after the last one its journal
holds is skipped. After a restart that is routine, for the hub's snapshot replays history the
journal already has, and those candles are skipped in silence. A *live* candle that is not newer
than the journal is not routine: the market's clock went back (a simulated market started again
without its clock file, an exchange or a data source that restarted its series). Skipping those
in silence leaves the strategy `running`, warm and trading nothing until the market catches up,
maybe for days; so the first one of a key is said, with the gap, and so is the end of it.
"""

from __future__ import annotations

from qkt.log import iso_utc
from qkt.market.models import Candle, CandleKey


class MarketBehind:
    """Per key, how many live candles were skipped in a row as older than the journal."""

    def __init__(self) -> None:
        self._skipped: dict[CandleKey, int] = {}

    def skipped(self, candle: Candle, last_open_ms: int) -> str | None:
        """Count a live `candle` skipped because the journal holds one that opened at
        `last_open_ms`; the warning to give for the first of a run of them, else None."""
        count = self._skipped.get(candle.key, 0) + 1
        self._skipped[candle.key] = count
        if count > 1:
            return None
        return (
            f"{candle.key}: ignoring live candles: this one opened at {iso_utc(candle.open_ms)}, "
            f"but the strategy already took the one of {iso_utc(last_open_ms)} (the market's "
            f"clock is {_span(last_open_ms - candle.open_ms + candle.key.timeframe.ms)} behind "
            "the journal: was the market restarted?); no rule runs on this key until its "
            "candles are newer than that"
        )

    def taken(self, candle: Candle) -> str | None:
        """A live `candle` was taken: after skipped ones, the line that says trading resumed."""
        count = self._skipped.pop(candle.key, 0)
        if count == 0:
            return None
        return f"{candle.key}: live candles are newer than the journal again after {count} ignored"


def _span(ms: int) -> str:
    """`ms` as the largest whole unit that fits: `3 days`, `5 h`, `12 min`, `40 s`."""
    for unit, size in (("days", 86_400_000), ("h", 3_600_000), ("min", 60_000)):
        if ms >= size:
            return f"{ms // size} {unit}"
    return f"{ms // 1000} s"
