"""CandleAggregator: the closed candles of several timeframes of one market, from one input.

The input is either trades or the closed candles of one base timeframe (an exchange's confirmed
klines, a CSV's rows). Every timeframe is built from that single input, so a symbol needs one
upstream subscription however many timeframes of it are wanted. Buckets are aligned to the UTC
epoch. A candle closes exactly once: when input for a later bucket arrives, when the feed's clock
passes its end (`advance`), or at the end of the data (`flush`). Buckets without input produce no
candle. A candle whose bucket began before the input was known to be complete (`since_ms`: the
moment of subscription, a reconnect that lost data) is dropped rather than emitted half-built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

from qkt.market.models import Candle, CandleKey, Timeframe

log = logging.getLogger(__name__)

# `since_ms` of a slot whose input is interrupted: nothing is emitted until `resume`.
_BLOCKED = 2**62


class _Slot:
    """One timeframe's forming candle (mutable on purpose: it is updated on every trade)."""

    __slots__ = ("key", "ms", "since_ms", "done_ms", "open_ms", "end_ms", "o", "h", "lo", "c", "v")

    def __init__(self, key: CandleKey, since_ms: int | None) -> None:
        self.key = key
        self.ms = key.timeframe.ms
        # None: "from the first input on" (decided when it arrives).
        self.since_ms = since_ms
        self.done_ms = -1  # end of the last bucket closed: input before it is late
        self.open_ms = -1  # -1: no forming candle
        self.end_ms = -1
        self.o = self.h = self.lo = self.c = self.v = Decimal(0)

    def start(
        self, ts_ms: int, o: Decimal, h: Decimal, lo: Decimal, c: Decimal, v: Decimal
    ) -> None:
        if self.since_ms is None:
            self.since_ms = ts_ms
        self.open_ms = ts_ms - ts_ms % self.ms
        self.end_ms = self.open_ms + self.ms
        self.o, self.h, self.lo, self.c, self.v = o, h, lo, c, v

    def take(self) -> Candle | None:
        """End the forming candle; return it if it is complete, else None (logged)."""
        open_ms = self.open_ms
        if open_ms < 0:
            return None
        self.done_ms = self.end_ms
        self.open_ms = self.end_ms = -1
        if self.since_ms is not None and open_ms < self.since_ms:
            log.debug(
                "dropping incomplete candle %s at %d (input since %d)",
                self.key,
                open_ms,
                self.since_ms,
            )
            return None
        return Candle(self.key, open_ms, self.o, self.h, self.lo, self.c, self.v)


def _ordered(candles: list[Candle]) -> list[Candle]:
    # Equal close instants: shorter timeframe first (the contract of CandleFeed.candles()).
    if len(candles) > 1:
        candles.sort(key=lambda candle: (candle.end_ms, candle.key.timeframe.ms))
    return candles


class CandleAggregator:
    """Builds the closed candles of one market's timeframes from trades or from base candles."""

    def __init__(self, broker: str, symbol: str, base: Timeframe | None = None) -> None:
        self.broker = broker
        self.symbol = symbol
        self.base = base  # None: the input is trades
        self._slots: list[_Slot] = []  # shortest timeframe first
        self._next_base_ms: int | None = None  # end of the last base candle received
        self._check_gap = False

    @property
    def timeframes(self) -> tuple[Timeframe, ...]:
        """The timeframes being built, shortest first."""
        return tuple(slot.key.timeframe for slot in self._slots)

    def add_timeframe(self, timeframe: Timeframe, since_ms: int | None = None) -> None:
        """Start building `timeframe`; its candles count from `since_ms` (None: first input).

        From base candles, a timeframe added mid-stream starts after the last base candle seen.
        """
        if self.base is not None and timeframe.ms % self.base.ms:
            raise ValueError(f"{timeframe} cannot be built from {self.base} candles")
        if any(slot.key.timeframe == timeframe for slot in self._slots):
            return
        if since_ms is None and self.base is not None:
            since_ms = self._next_base_ms
        key = CandleKey(self.broker, self.symbol, timeframe)
        self._slots.append(_Slot(key, since_ms))
        self._slots.sort(key=lambda slot: slot.ms)

    def remove_timeframe(self, timeframe: Timeframe) -> None:
        """Stop building `timeframe` (its forming candle is discarded)."""
        self._slots = [slot for slot in self._slots if slot.key.timeframe != timeframe]

    def on_trade(self, ts_ms: int, price: Decimal, size: Decimal) -> list[Candle]:
        """Add one trade; return the candles it closed (those whose bucket it lies after)."""
        closed: list[Candle] = []
        for slot in self._slots:
            if slot.open_ms < 0:
                if ts_ms >= slot.done_ms:
                    slot.start(ts_ms, price, price, price, price, size)
                    continue
            elif ts_ms >= slot.end_ms:
                candle = slot.take()
                if candle is not None:
                    closed.append(candle)
                slot.start(ts_ms, price, price, price, price, size)
                continue
            elif ts_ms >= slot.open_ms:
                if price > slot.h:
                    slot.h = price
                elif price < slot.lo:
                    slot.lo = price
                slot.c = price
                slot.v += size
                continue
            # Older than a candle already closed or forming: it cannot be added any more.
            log.debug("late trade for %s at %d ignored", slot.key, ts_ms)
        return _ordered(closed)

    def on_candle(self, candle: Candle) -> list[Candle]:
        """Add one closed base candle; return every candle closed by it (itself included)."""
        open_ms = candle.open_ms
        if self._check_gap:
            self._check_gap = False
            if self._next_base_ms is not None and open_ms > self._next_base_ms:
                # Base candles were lost while the input was cut off: what was forming is
                # incomplete, and so is every bucket that began before this candle.
                log.warning(
                    "%s:%s: base candles lost before %d; forming candles dropped",
                    self.broker,
                    self.symbol,
                    open_ms,
                )
                for slot in self._slots:
                    slot.open_ms = slot.end_ms = -1
                    slot.since_ms = open_ms
        if self._next_base_ms is not None and open_ms < self._next_base_ms:
            log.debug(
                "base candle %s at %d is not newer than the last one; ignored", candle.key, open_ms
            )
            return []
        end_ms = candle.end_ms
        self._next_base_ms = end_ms
        closed: list[Candle] = []
        for slot in self._slots:
            if slot.open_ms >= 0 and open_ms >= slot.end_ms:
                done = slot.take()
                if done is not None:
                    closed.append(done)
            if slot.open_ms < 0:
                slot.start(
                    open_ms, candle.open, candle.high, candle.low, candle.close, candle.volume
                )
            else:
                if candle.high > slot.h:
                    slot.h = candle.high
                if candle.low < slot.lo:
                    slot.lo = candle.low
                slot.c = candle.close
                slot.v += candle.volume
            if end_ms == slot.end_ms:  # the base candle completes the bucket
                done = slot.take()
                if done is not None:
                    closed.append(done)
        return _ordered(closed)

    def advance(self, now_ms: int) -> list[Candle]:
        """Close every candle whose end has passed on the feed's clock `now_ms`.

        From base candles, a bucket waits one base period past its end for its last base candle.
        """
        if self._check_gap:
            return []  # cut off: whether the forming buckets are complete is known only later
        lag = self.base.ms if self.base is not None else 0
        closed: list[Candle] = []
        for slot in self._slots:
            if 0 <= slot.open_ms and slot.end_ms + lag <= now_ms:
                candle = slot.take()
                if candle is not None:
                    closed.append(candle)
        return _ordered(closed)

    def flush(self) -> list[Candle]:
        """Close every forming candle (the end of the data: the last one may be partial)."""
        closed = [candle for slot in self._slots if (candle := slot.take()) is not None]
        return _ordered(closed)

    def interrupt(self, now_ms: int) -> list[Candle]:
        """The input was cut off at `now_ms`: close what is complete, hold the rest back.

        From trades, the forming candles are incomplete and are dropped. From base candles they
        may still be completed if no base candle was lost (checked at the next one).
        """
        closed = self.advance(now_ms)
        if self.base is None:
            for slot in self._slots:
                slot.open_ms = slot.end_ms = -1
                slot.since_ms = _BLOCKED
        else:
            self._check_gap = True
        return closed

    def resume(self, since_ms: int) -> None:
        """Input flows again; from trades, it is complete from `since_ms` on."""
        if self.base is None:
            for slot in self._slots:
                slot.since_ms = since_ms


def merge_closed(batches: Iterable[list[Candle]]) -> list[Candle]:
    """Several aggregators' closed candles as one list in close order (shorter timeframe first)."""
    return _ordered([candle for batch in batches for candle in batch])
