"""Replay of historical data: `replay_candles` for the backtester, `CsvReplayFeed` (`BACKTEST`).

Each data source (file, or a symbol's tick files) is read once, however many keys use it, and
aggregated up to every key's timeframe; the sources are merged in close order: end time, then
shorter timeframe first, then the order the keys were given in. Everything streams: a row becomes
a candle, is aggregated, and is gone.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

from qkt.errors import UserError
from qkt.market import csvdata
from qkt.market.aggregate import CandleAggregator
from qkt.market.feed import FeedOptions, FeedState, FeedStatus
from qkt.market.models import Candle, CandleKey, Timeframe
from qkt.market.outbox import Outbox

log = logging.getLogger(__name__)

_YIELD_EVERY = 512  # candles replayed between two chances for the event loop to run others


def replay_candles(
    data: csvdata.DataPaths,
    keys: Sequence[CandleKey],
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Iterator[Candle]:
    """Every closed candle of every key in `[start_ms, end_ms)`, merged in close order.

    The last, possibly partial, candle of each key is flushed at the end of the data. Raises
    UserError for missing data, a stream finer than its file, or a malformed row (file:line).
    """
    order = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    groups: dict[csvdata.Source, list[CandleKey]] = {}
    for key in order:
        groups.setdefault(csvdata.locate(data, key.symbol), []).append(key)
    streams = [_stream(source, group, start_ms, end_ms) for source, group in groups.items()]
    if len(streams) == 1:
        return streams[0]

    def close_order(candle: Candle) -> tuple[int, int, int]:
        return candle.end_ms, candle.key.timeframe.ms, order[candle.key]

    return heapq.merge(*streams, key=close_order)


def _stream(
    source: csvdata.Source, keys: list[CandleKey], start_ms: int | None, end_ms: int | None
) -> Iterator[Candle]:
    """The candles of `keys` (all reading `source`), in close order."""
    rank = {key: index for index, key in enumerate(keys)}
    if source.kind == "ticks":
        return _sorted(_from_ticks(source, keys, start_ms, end_ms), rank)
    path = source.paths[0]
    rows = csvdata.read_candles(path)
    head = list(itertools.islice(rows, csvdata.SNIFF_ROWS))
    base = csvdata.sniff_timeframe(path, head)
    if all(key.timeframe == base for key in keys):
        return _as_is(path, base, keys, itertools.chain(head, rows), start_ms, end_ms)
    return _sorted(_from_candles(path, base, keys, head, rows, start_ms, end_ms), rank)


def _as_is(
    path: Path,
    base: Timeframe,
    keys: list[CandleKey],
    rows: Iterator[csvdata.CandleRow],
    start_ms: int | None,
    end_ms: int | None,
) -> Iterator[Candle]:
    """The file's own candles, when every key wants its timeframe: nothing to aggregate (the
    common case, and the backtester's hot loop: a row becomes a Candle per key and no more)."""
    step = base.ms
    start = start_ms if start_ms is not None else -1
    end = end_ms if end_ms is not None else 2**63
    only = keys[0] if len(keys) == 1 else None  # one key: no loop over keys per row
    for ts, o, h, lo, c, v, line in rows:
        if ts < start:
            continue
        if ts >= end:
            break
        if ts % step:
            raise UserError(f"{path}:{line}: {ts} is not on a {base} boundary like the rows before")
        if only is not None:
            yield Candle(only, ts, o, h, lo, c, v)
            continue
        for key in keys:
            yield Candle(key, ts, o, h, lo, c, v)


def _aggregators(
    keys: list[CandleKey], base: Timeframe | None, since_ms: int | None
) -> list[CandleAggregator]:
    markets: dict[tuple[str, str], CandleAggregator] = {}
    for key in keys:
        market = (key.broker, key.symbol)
        if market not in markets:
            markets[market] = CandleAggregator(key.broker, key.symbol, base)
        markets[market].add_timeframe(key.timeframe, since_ms=since_ms)
    return list(markets.values())


def _from_ticks(
    source: csvdata.Source, keys: list[CandleKey], start_ms: int | None, end_ms: int | None
) -> Iterator[list[Candle]]:
    # Tick files start at the day boundary: the first bucket is taken as whole.
    aggregators = _aggregators(keys, None, start_ms if start_ms is not None else 0)
    start = start_ms if start_ms is not None else -1
    for ts, price, size in csvdata.read_ticks(_days(source.paths, start_ms, end_ms)):
        if ts < start:
            continue
        if end_ms is not None and ts >= end_ms:
            break
        closed = [c for aggregator in aggregators for c in aggregator.on_trade(ts, price, size)]
        if closed:
            yield closed
    yield [candle for aggregator in aggregators for candle in aggregator.flush()]


def _days(paths: tuple[Path, ...], start_ms: int | None, end_ms: int | None) -> tuple[Path, ...]:
    """Skip day files wholly outside [start, end) (their names are `YYYY-MM-DD.csv[.gz]`)."""
    day_ms = 86_400_000
    kept = []
    for path in paths:
        try:
            day = csvdata.parse_timestamp(path.name.split(".")[0])
        except ValueError:
            kept.append(path)  # not a date: read it and let its rows speak
            continue
        if start_ms is not None and day + day_ms <= start_ms:
            continue
        if end_ms is not None and day >= end_ms:
            continue
        kept.append(path)
    return tuple(kept)


def _from_candles(
    path: Path,
    base: Timeframe,
    keys: list[CandleKey],
    head: list[csvdata.CandleRow],
    rows: Iterator[csvdata.CandleRow],
    start_ms: int | None,
    end_ms: int | None,
) -> Iterator[list[Candle]]:
    for key in keys:
        if key.timeframe.ms < base.ms:
            raise UserError(f"{path}: the stream {key} is finer than the file's {base} candles")
        if key.timeframe.ms % base.ms:
            raise UserError(f"{path}: the stream {key} cannot be built from {base} candles")
    aggregators = _aggregators(keys, base, None)
    base_keys = [CandleKey(a.broker, a.symbol, base) for a in aggregators]
    start = start_ms if start_ms is not None else -1
    for ts, o, h, lo, c, v, line in itertools.chain(head, rows):
        if ts < start:
            continue
        if end_ms is not None and ts >= end_ms:
            break
        if ts % base.ms:
            raise UserError(f"{path}:{line}: {ts} is not on a {base} boundary like the rows before")
        closed = [
            candle
            for aggregator, key in zip(aggregators, base_keys, strict=True)
            for candle in aggregator.on_candle(Candle(key, ts, o, h, lo, c, v))
        ]
        if closed:
            yield closed
    yield [candle for aggregator in aggregators for candle in aggregator.flush()]


def _sorted(batches: Iterator[list[Candle]], rank: dict[CandleKey, int]) -> Iterator[Candle]:
    """Flatten the candles closed by each input row; batches come in close order already."""
    for batch in batches:
        if len(batch) > 1:
            batch.sort(key=lambda c: (c.end_ms, c.key.timeframe.ms, rank[c.key]))
        yield from batch


class CsvReplayFeed:
    """The `BACKTEST` broker as a CandleFeed: replays `FeedOptions.data_path` as fast as read.

    A key subscribed mid-replay joins at the replay's current time. At the end of the data the
    feed idles until `aclose()`.
    """

    def __init__(self, options: FeedOptions, broker: str = "BACKTEST") -> None:
        if options.data_path is None:
            raise UserError(f"{broker} needs data: pass --data PATH (a candle CSV or a folder)")
        self._broker = broker
        self._data = options.data_path
        self._outbox = Outbox()
        self._order: list[CandleKey] = []
        self._version = 0
        self._position: int | None = None  # end of the last candle replayed
        self._heard: float | None = None
        self._failed = False

    @property
    def broker(self) -> str:
        """The broker name this feed serves."""
        return self._broker

    def subscribe(self, key: CandleKey) -> None:
        """Replay `key` too (UserError if the data has nothing for its symbol)."""
        if key in self._outbox.keys:
            return
        csvdata.locate(self._data, key.symbol)
        self._outbox.keys.add(key)
        self._order.append(key)
        self._changed()

    def unsubscribe(self, key: CandleKey) -> None:
        """Stop replaying `key`."""
        if key not in self._outbox.keys:
            return
        self._outbox.keys.discard(key)
        self._order.remove(key)
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._outbox.wake()

    async def candles(self) -> AsyncIterator[Candle]:
        """Replay the subscribed keys; restart from the current time when they change."""
        outbox = self._outbox
        while not outbox.closed:
            version = self._version
            if self._order and not self._failed:
                replayed = 0
                try:
                    for candle in replay_candles(self._data, list(self._order), self._position):
                        if outbox.closed or version != self._version:
                            break
                        self._position = candle.end_ms
                        self._heard = time.monotonic()
                        outbox.put((candle,))
                        for ready in outbox.pop_ready():
                            yield ready
                        replayed += 1
                        if replayed % _YIELD_EVERY == 0:
                            await asyncio.sleep(0)
                except UserError as error:
                    log.error("%s: replay stopped: %s", self._broker, error.message)
                    self._failed = True
            if version == self._version:
                await outbox.wait()  # the end of the data: idle until the keys change

    def status(self) -> FeedStatus:
        """LIVE while replaying or idle at the end of the data; CLOSED after `aclose()`."""
        state = FeedState.CLOSED if self._outbox.closed or self._failed else FeedState.LIVE
        age = None if self._heard is None else int((time.monotonic() - self._heard) * 1000)
        return FeedStatus(state, age)

    async def aclose(self) -> None:
        """End `candles()`."""
        self._outbox.close()
