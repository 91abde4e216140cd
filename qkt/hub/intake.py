"""FeedIntake: the hub's side facing its feeds, the path every closed candle takes through it.

One feed per broker, opened on first use, with a task pumping its closed candles into the key
streams (and from them onto the PUB socket); each feed's health; and the periodic watch that
judges every key's freshness and tells listeners when one goes stale or comes back. `CandleHub`
(hub.py) builds on it with its lifecycle and the ref-counted keys; the intake is its own module
so that the per-candle path reads as one piece.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from qkt.hub import wire
from qkt.hub.config import HubConfig
from qkt.hub.keystream import KeyStream
from qkt.hub.publisher import Publisher
from qkt.hub.records import FeedEvent
from qkt.hub.wire import SequencedCandle
from qkt.market.feed import CandleFeed
from qkt.market.history import HasHistory, HistorySource
from qkt.market.models import Candle, CandleKey

# The hub's logger, by the name it always had: it shows in the daemon's log lines.
log = logging.getLogger("qkt.hub.hub")

FeedFactory = Callable[[str], CandleFeed]
Listener = Callable[[FeedEvent], None]
FAILED_FEED_STATE = "failed"  # the pump of a feed died: its keys get no more candles


class FeedIntake:
    """Feeds in, key streams and the PUB socket out; `CandleHub` is the one class built on it."""

    # Set by CandleHub.__init__ (declared here for the type checker).
    _factory: FeedFactory
    _config: HubConfig
    _publisher: Publisher | None
    _feeds: dict[str, CandleFeed]
    _pumps: dict[str, asyncio.Task[None]]
    _failed: set[str]
    _keys: dict[CandleKey, KeyStream]
    _listeners: list[Listener]
    dropped_unacquired: int

    # -- feeds -------------------------------------------------------------------------------

    def _feed(self, broker: str) -> CandleFeed:
        feed = self._feeds.get(broker)
        if feed is None:
            feed = self._factory(broker)
            self._feeds[broker] = feed
            self._pumps[broker] = asyncio.get_running_loop().create_task(
                self._pump(broker, feed), name=f"hub-pump-{broker}"
            )
        return feed

    def _feed_health(self, broker: str) -> tuple[str, int | None]:
        feed = self._feeds[broker]
        status = feed.status()
        state = FAILED_FEED_STATE if broker in self._failed else status.state.value
        return state, status.last_message_age_ms

    @staticmethod
    def _history_source(feed: CandleFeed) -> HistorySource | None:
        if not isinstance(feed, HasHistory):
            return None
        try:
            return feed.history_source()
        except Exception:
            log.exception("the %s feed's history source failed to open", feed.broker)
            return None

    async def _pump(self, broker: str, feed: CandleFeed) -> None:
        try:
            async for candle in feed.candles():
                self._publish(candle)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The protocol says candles() never raises; if one does, say so loudly and show it
            # in /hub rather than restart a feed whose state we cannot trust.
            self._failed.add(broker)
            log.exception("the %s feed failed; its keys get no more candles", broker)

    def _publish(self, candle: Candle) -> None:
        stream = self._keys.get(candle.key)
        if stream is None:
            self.dropped_unacquired += 1
            return
        stream.offer(candle)

    def _send(self, item: SequencedCandle) -> None:
        assert self._publisher is not None  # candles flow only after start()
        self._publisher.send(wire.encode_candle(item))

    async def _watch_freshness(self) -> None:
        """Judge every key's freshness periodically; tell listeners about each change. Fetch a
        candle the feed owes from history (KeyStream.fetch_overdue)."""
        while True:
            await asyncio.sleep(self._config.freshness_interval_s)
            for key, stream in list(self._keys.items()):
                feed_state = self._feed_health(key.broker)[0]
                stream.fetch_overdue(feed_state)
                event = stream.check(feed_state)
                if event is None:
                    continue
                log.log(
                    logging.WARNING if event.stale else logging.INFO,
                    "%s is %s: %s",
                    key,
                    "stale" if event.stale else "live",
                    event.reason,
                )
                for listener in list(self._listeners):
                    try:
                        listener(event)
                    except Exception:
                        log.exception("a feed event listener failed")
