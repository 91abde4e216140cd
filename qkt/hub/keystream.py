"""KeyStream: one acquired key in the hub: its ring, its backfill, its stitching and its freshness.

Backfill: on the first acquire the key's ring is filled once with closed history from the feed's
history source, however many acquires come meanwhile (a later one asking for more extends the
same fetch). Live candles arriving meanwhile are held back, then the two are stitched: history
stops before the first live candle, and a hole between them is fetched, so the ring holds one
gap-free, duplicate-free series. The same repair runs whenever a live candle skips buckets (a
reconnect that lost candles), and when the candle due next has not come a few seconds after its
close: a feed that started (or reconnected) in the middle of a bucket drops that half-built
candle, which would otherwise come a whole bar late, with the next one. History goes into the
ring only (nobody has read the key yet: the snapshot socket holds requests until the fill is
done); repaired and live candles are published.

Freshness: the key is stale while its feed is not connected, or when no candle came for longer
than its cadence allows (1.5 cadences plus a second of slack); each change is one `FeedEvent`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from qkt.hub.records import FeedEvent, KeyFreshness, KeyHistory, KeyStats, Warmth
from qkt.hub.snapshot import HistoryRing
from qkt.hub.wire import SequencedCandle
from qkt.market.history import HistoryError, HistorySource, fetch_all, last_closed_end
from qkt.market.models import Candle, CandleKey

log = logging.getLogger(__name__)

Send = Callable[[SequencedCandle], None]
NOT_LIVE_STATES: Final = frozenset({"reconnecting", "stale", "failed", "closed"})
STALE_CADENCES: Final = 1.5
STALE_SLACK_S: Final = 1.0
# A candle due from the feed and not there this long after its close (or a twentieth of its
# cadence, if longer) is fetched from history: a feed delivers well within a second of the close.
OVERDUE_GRACE_S: Final = 3.0
OVERDUE_GRACE_CADENCES: Final = 0.05


class KeyStream:
    """The hub's state for one key (created on its first acquire, dropped on its last release)."""

    def __init__(
        self,
        key: CandleKey,
        ring: HistoryRing,
        send: Send,
        source: HistorySource | None,
        *,
        wanted: int,
        speed: float = 1.0,
        fetch_timeout_s: float = 120.0,
    ) -> None:
        self.key = key
        self.ring = ring
        self.refs = 1
        self.wanted = wanted
        self.published = 0
        self.duplicates = 0
        self.last_open_ms: int | None = None
        self.last_close_ts: int | None = None
        self.cadence_s = key.timeframe.ms / 1000 / speed
        self._send = send
        self._source = source
        self._timeout_s = fetch_timeout_s
        self._holding = False  # live candles wait in `_pending` while history is fetched
        self._pending: list[Candle] = []
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()  # set once the ring holds its history (or none will come)
        # A snapshot was answered before the history came (the hold ran out): someone may be
        # reading the stream, and history slipped in now would reach them as live candles.
        self.read_early = False
        self._warmth = Warmth.COLD
        self._history_candles = 0
        self._reason: str | None = None
        self._no_repair = source is None  # a source that can never help is not asked again
        self._overdue: tuple[int, float] | None = None  # (open time due, when first seen closed)
        self._overdue_asked: int | None = None  # the open time last fetched for being overdue
        # Silence is counted from one cadence after the acquire: the first candle may take that.
        self._heard = time.monotonic() + self.cadence_s
        self.stale = False
        self.stale_reason: str | None = None

    # -- backfill ----------------------------------------------------------------------------

    def start_backfill(self) -> None:
        """Fetch history once (call right after construction, from the running loop)."""
        if self._source is None:
            self._reason = "the feed has no history source"
            self.ready.set()
            return
        if self.wanted <= 0:
            self._warmth = Warmth.WARM
            self.ready.set()
            return
        self._warmth = Warmth.BACKFILLING
        self._holding = True
        self._task = asyncio.get_running_loop().create_task(
            self._backfill(self._source), name=f"hub-backfill-{self.key}"
        )

    def want(self, count: int) -> None:
        """Another holder asks for `count` candles: extend the fetch if it is still running."""
        if count <= self.wanted:
            return
        self.ring.grow(count)
        if self._warmth is Warmth.BACKFILLING:
            self.wanted = count  # the running fetch reads it before it fills the ring
        elif self._warmth is Warmth.WARM and len(self.ring) < count:
            self._warmth = Warmth.PARTIAL  # cannot prepend older history to a numbered stream
            self._reason = f"asked for {count} candles after the backfill of {self.wanted}"
            self.wanted = count

    async def _backfill(self, source: HistorySource) -> None:
        key, tf = self.key, self.key.timeframe.ms
        history: list[Candle] = []
        try:
            end = last_closed_end(key, source.now_ms())
            wanted = self.wanted
            start = end - wanted * tf
            history = await self._fetch(source, start, end)
            while self.wanted > wanted:  # a later acquire asked for more meanwhile
                older = await self._fetch(source, end - self.wanted * tf, start)
                history = older + history
                wanted, start = self.wanted, end - self.wanted * tf
        except HistoryError as error:
            self._reason = error.reason
            self._no_repair = error.permanent
            log.warning("%s: no history (%s); it warms on live candles", key, error.reason)
        except Exception as error:
            self._reason = f"history failed: {type(error).__name__}"
            log.exception("%s: history fetch failed", key)
        if self.read_early and history:
            log.warning("%s: history came after a subscriber had read the key; it is dropped", key)
            history = []
            self._reason = "the history came after the strategy had started"
        self._history_candles = len(history)
        if self._reason is None:
            complete = len(history) >= self.wanted
            self._warmth = Warmth.WARM if complete else Warmth.PARTIAL
            if not complete:
                self._reason = f"{len(history)} of {self.wanted} candles of history exist"
        else:
            self._warmth = Warmth.PARTIAL if history else Warmth.COLD
        await self._stitch(history, into_ring_only=True)
        log.info("%s: backfilled %d candles from %s", key, len(history), source.name)

    async def _fetch(self, source: HistorySource, start: int, end: int) -> list[Candle]:
        return await asyncio.wait_for(fetch_all(source, self.key, start, end), self._timeout_s)

    async def _stitch(self, history: list[Candle], *, into_ring_only: bool) -> None:
        """Put `history` before the held live candles, fetch any hole between, release them."""
        try:
            if self._pending:
                first_live = self._pending[0].open_ms
                history = [c for c in history if c.open_ms < first_live]
                last = history[-1].end_ms if history else self._next_open()
                if last is not None and last < first_live and self._source and not self._no_repair:
                    start = max(last, first_live - self.ring.capacity * self.key.timeframe.ms)
                    try:
                        hole = await self._fetch(self._source, start, first_live)
                    except (HistoryError, TimeoutError) as error:
                        log.warning("%s: could not fill a gap before %d: %s", self.key, first_live,
                                    getattr(error, "reason", "timeout"))  # fmt: skip
                        hole = []
                    self._emit_all(history, into_ring_only)
                    history, into_ring_only = hole, False
            self._emit_all(history, into_ring_only)
            for candle in self._pending:  # the live candles held meanwhile, in order
                self._accept(candle)
        finally:
            self._pending = []
            self._holding = False
            self.ready.set()

    def _emit_all(self, candles: list[Candle], into_ring_only: bool) -> None:
        for candle in candles:
            if into_ring_only:
                if self.last_open_ms is None or candle.open_ms > self.last_open_ms:
                    self.ring.add(candle)
                    self.last_open_ms, self.last_close_ts = candle.open_ms, candle.end_ms
            else:
                self._accept(candle)

    def _next_open(self) -> int | None:
        return None if self.last_open_ms is None else self.last_open_ms + self.key.timeframe.ms

    # -- live candles ------------------------------------------------------------------------

    def offer(self, candle: Candle) -> None:
        """A live candle from the feed: hold it, repair a hole before it, or publish it."""
        self._heard = time.monotonic()
        if self._holding:
            self._pending.append(candle)
            return
        expected = self._next_open()
        if (
            expected is not None
            and candle.open_ms > expected
            and self._source is not None
            and not self._no_repair
        ):
            log.info("%s: live candle at %d skips buckets from %d; fetching them",
                     self.key, candle.open_ms, expected)  # fmt: skip
            self._holding = True
            self._pending.append(candle)
            self._task = asyncio.get_running_loop().create_task(
                self._stitch([], into_ring_only=False), name=f"hub-repair-{self.key}"
            )
            return
        self._accept(candle)

    def _accept(self, candle: Candle) -> None:
        if self.last_open_ms is not None and candle.open_ms <= self.last_open_ms:
            self.duplicates += 1
            level = logging.DEBUG if candle.open_ms == self.last_open_ms else logging.WARNING
            log.log(level, "%s candle at %d dropped (duplicate or late)", self.key, candle.open_ms)
            return
        self.last_open_ms = candle.open_ms
        item = self.ring.add(candle)  # ring first: a snapshot may promise it before PUB sends
        self.published += 1
        self.last_close_ts = candle.end_ms
        self._send(item)

    def fetch_overdue(self, feed_state: str, now: float | None = None) -> None:
        """Fetch the candle due next from history if its bucket closed (on the source's clock) a
        grace ago and the live feed has not delivered it; at most once per candle, and not while
        the feed is down (its reconnect repairs what it lost)."""
        expected = self._next_open()
        source = self._source
        if (
            expected is None
            or source is None
            or self._holding
            or self._no_repair
            or feed_state in NOT_LIVE_STATES
            or expected == self._overdue_asked
        ):
            return
        closed_end = last_closed_end(self.key, source.now_ms())
        if closed_end < expected + self.key.timeframe.ms:
            return  # not closed yet
        now = time.monotonic() if now is None else now
        if self._overdue is None or self._overdue[0] != expected:
            self._overdue = (expected, now)
        if now - self._overdue[1] < max(OVERDUE_GRACE_S, self.cadence_s * OVERDUE_GRACE_CADENCES):
            return
        self._overdue_asked = expected
        log.info("%s: the candle at %d did not come from the feed; fetching it", self.key, expected)
        self._holding = True
        self._task = asyncio.get_running_loop().create_task(
            self._fill(source, expected, closed_end), name=f"hub-overdue-{self.key}"
        )

    async def _fill(self, source: HistorySource, start: int, end: int) -> None:
        try:
            candles = await self._fetch(source, start, end)
        except (HistoryError, TimeoutError) as error:
            log.warning("%s: could not fetch the candles from %d: %s", self.key, start,
                        getattr(error, "reason", "timeout"))  # fmt: skip
            self._no_repair = isinstance(error, HistoryError) and error.permanent
            candles = []
        await self._stitch(candles, into_ring_only=False)

    # -- what the daemon reads ---------------------------------------------------------------

    def history(self) -> KeyHistory:
        """The key's backfill record."""
        source = self._source.name if self._source is not None else None
        return KeyHistory(
            str(self.key),
            self._warmth,
            self.wanted,
            self._history_candles,
            len(self.ring),
            source,
            self._reason,
        )

    def stats(self, feed_state: str, message_age_ms: int | None) -> KeyStats:
        """The key's line in `GET /hub`."""
        history = self.history()
        fresh = self.freshness(feed_state)
        return KeyStats(
            key=str(self.key),
            subscribers=self.refs,
            candles_published=self.published,
            last_close_ts=self.last_close_ts,
            feed_state=feed_state,
            last_message_age_ms=message_age_ms,
            seq=self.ring.seq,
            duplicates_dropped=self.duplicates,
            warm=history.warm,
            history_candles=history.candles,
            history_source=history.source,
            history_reason=history.reason,
            stale=fresh.stale,
            last_candle_age_ms=fresh.last_candle_age_ms,
        )

    def freshness(self, feed_state: str, now: float | None = None) -> KeyFreshness:
        """Live or stale, judged now from the feed's state and the silence of this key."""
        now = time.monotonic() if now is None else now
        silent_s = max(0.0, now - self._heard)
        age = None if self.last_close_ts is None else int(silent_s * 1000)
        stale, reason = False, None
        limit = self.cadence_s * STALE_CADENCES + STALE_SLACK_S
        if feed_state in NOT_LIVE_STATES:
            stale, reason = True, f"feed {feed_state}"
        elif silent_s > limit:
            stale = True
            reason = f"no candle for {silent_s:.0f} s (one expected every {self.cadence_s:g} s)"
        return KeyFreshness(
            str(self.key), stale, feed_state, age, int(self.cadence_s * 1000), reason
        )

    def check(self, feed_state: str) -> FeedEvent | None:
        """Re-judge freshness; the event if it changed (stale <-> live), else None."""
        fresh = self.freshness(feed_state)
        if fresh.stale == self.stale:
            return None
        self.stale, self.stale_reason = fresh.stale, fresh.reason
        return FeedEvent(
            str(self.key),
            fresh.stale,
            fresh.reason or "live again",
            fresh.last_candle_age_ms,
            time.time_ns() // 10**6,
        )

    def cancel(self) -> None:
        """Stop a running backfill or repair without waiting (the key was released)."""
        if self._task is not None:
            self._task.cancel()
        self.ready.set()

    async def aclose(self) -> None:
        """Stop a running backfill or repair."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.ready.set()
