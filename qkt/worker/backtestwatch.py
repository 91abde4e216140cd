"""`_Watch`: what a backtest reads from each symbol's finest stream besides the engine: data gaps,
the marks (last closes) and the buy-and-hold curve.

Its own module because it is the replay's one piece of per-candle bookkeeping outside the
engine, with its own tuned paths (`observe_one` for a single stream, streams found by the key
object's id); `run_backtest` (`qkt.worker.backtest`) drives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from qkt.market.models import Candle, CandleKey, Timeframe
from qkt.worker.figures import EquityCurve, Gap


class _Stream:
    """What `_Watch` keeps about one symbol's finest stream."""

    __slots__ = ("first_close", "last_open", "step", "symbol")

    def __init__(self, key: CandleKey) -> None:
        self.symbol = key.symbol
        self.step = key.timeframe.ms
        self.last_open = -1
        self.first_close = 0.0


class _Watch:
    """Per symbol, from its finest stream: data gaps, marks and the buy-and-hold curve."""

    def __init__(self, keys: Sequence[CandleKey], gap_candles: int) -> None:
        self.finest = _finest(keys)
        self.gap_candles = gap_candles
        self.gaps: list[Gap] = []
        self.curve = EquityCurve(Decimal(0))
        self._ratio: dict[str, float] = {}  # symbol -> last close / first close
        self.hold = 1.0  # buy-and-hold equity per unit: the mean of those ratios
        self.close: dict[str, Decimal] = {}  # symbol -> last close (its mark)
        # By the key object's id: a CandleKey's hash is computed field by field on every call,
        # and the replay hands out the same key object for every candle of a stream.
        self._streams: dict[int, _Stream | None] = {}
        self._seen: list[CandleKey] = []
        self._only = _Stream(keys[0]) if len(keys) == 1 else None  # the one stream, if so

    def observe_one(self, candle: Candle) -> None:
        """`observe([candle])` when the run has one stream (so it is the finest)."""
        stream = self._only
        if stream is None:
            self.observe([candle])
            return
        open_ms, close = candle.open_ms, candle.close
        previous = stream.last_open
        if previous < 0:
            stream.first_close = float(close)
            self.curve.start_ms = open_ms
        elif open_ms - previous > stream.step:
            missing = (open_ms - previous) // stream.step - 1
            if missing > self.gap_candles:
                self.gaps.append(Gap(stream.symbol, previous, missing))
        stream.last_open = open_ms
        self.close[stream.symbol] = close
        self.hold = self._ratio[stream.symbol] = float(close) / stream.first_close

    def observe(self, instant: list[Candle]) -> None:
        streams = self._streams
        ratio = 0.0
        for candle in instant:
            key = candle.key
            stream = streams.get(id(key), _UNSEEN)
            if stream is _UNSEEN:
                stream = streams[id(key)] = _Stream(key) if key in self.finest else None
                self._seen.append(key)  # an id names this key only while the key is alive
            if stream is None:
                continue
            open_ms, close = candle.open_ms, candle.close
            previous = stream.last_open
            if previous < 0:
                stream.first_close = float(close)
                if not self.curve.times:
                    self.curve.start_ms = open_ms
            elif open_ms - previous > stream.step:
                missing = (open_ms - previous) // stream.step - 1
                if missing > self.gap_candles:
                    self.gaps.append(Gap(stream.symbol, previous, missing))
            stream.last_open = open_ms
            self.close[stream.symbol] = close
            ratio = self._ratio[stream.symbol] = float(close) / stream.first_close
        ratios = self._ratio
        if len(ratios) == 1:
            if ratio:  # the one symbol's, just computed
                self.hold = ratio
        elif ratios:
            self.hold = sum(ratios.values()) / len(ratios)


_UNSEEN: Final = _Stream(CandleKey("", "", Timeframe(1, "1ms")))  # not a stream of the run


def _finest(keys: Sequence[CandleKey]) -> set[CandleKey]:
    """Each symbol's shortest stream: the one gaps and buy-and-hold are read from."""
    best: dict[tuple[str, str], CandleKey] = {}
    for key in keys:
        market = (key.broker, key.symbol)
        if market not in best or key.timeframe.ms < best[market].timeframe.ms:
            best[market] = key
    return set(best.values())
