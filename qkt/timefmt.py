"""The one way qkt writes a time for people: `2026-05-08T15:02:14.234Z`, UTC whatever the zone.

A module of its own (the standard library's `time` only) so that the CLI can print times
without importing the logging machinery of `qkt.log`, which re-exports it.
"""

from __future__ import annotations

import time

# The last second written and its text: a log line's time is most of what formatting it costs
# (`gmtime` and `strftime`), and the lines of a candle, or of any busy moment, share a second.
_last_second: tuple[int | None, str] = (None, "")


def iso_utc(epoch_ms: int, *, millis: bool = True) -> str:
    """`2026-05-08T15:02:14.234Z` (or `...:14Z` without `millis`): the one way qkt writes a time
    for people, in logs, status answers and tables, whatever the machine's zone."""
    global _last_second
    second = epoch_ms // 1000
    cached_second, stamp = _last_second  # one read: another thread may replace it
    if second != cached_second:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, stamp)
    return f"{stamp}.{epoch_ms % 1000:03d}Z" if millis else f"{stamp}Z"
