"""The values market data is made of: Timeframe, CandleKey, Candle, Trade (Decimal, epoch ms)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

UNIT_MS: Final[dict[str, int]] = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TIMEFRAME: Final = re.compile(r"([0-9]+)([smhd])")


class TimeframeError(ValueError):
    """A timeframe that is not `<count><unit>` with count > 0 and unit one of s m h d."""


@dataclass(frozen=True, slots=True, order=True)
class Timeframe:
    """A candle length such as `30s`, `1m`, `4h`, `1d`; candles align to the UTC epoch."""

    ms: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """Parse `15m`; raise TimeframeError saying what is wrong."""
        match = _TIMEFRAME.fullmatch(text)
        if not match:
            raise TimeframeError(
                f"bad timeframe {text!r}: expected <count><unit> with unit s, m, h or d "
                "(lower case), e.g. 30s, 1m, 15m, 4h, 1d"
            )
        count = int(match.group(1))
        if count <= 0:
            raise TimeframeError(f"bad timeframe {text!r}: the count must be greater than 0")
        unit = match.group(2)
        return cls(ms=count * UNIT_MS[unit], text=f"{count}{unit}")

    def bucket(self, ts_ms: int) -> int:
        """Open time of the candle that contains `ts_ms` (epoch-aligned, UTC)."""
        return ts_ms - ts_ms % self.ms

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, order=True)
class CandleKey:
    """What a stream subscribes to: (broker, symbol, timeframe), e.g. SIM:BTCUSDT:1m."""

    broker: str
    symbol: str
    timeframe: Timeframe
    # Keys index the hub's streams and a worker's series, several lookups for every candle,
    # and a frozen dataclass hashes its fields anew each time (the timeframe's in Python
    # too): the hash is taken once. It stays out of pickles (__reduce__): a str's hash is
    # different in another process.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.broker, self.symbol, self.timeframe)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[CandleKey], tuple[str, str, Timeframe]]:
        return CandleKey, (self.broker, self.symbol, self.timeframe)

    @classmethod
    def parse(cls, text: str) -> CandleKey:
        """Parse `BROKER:SYMBOL:TIMEFRAME` (the form `str()` gives)."""
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"bad candle key {text!r}: expected BROKER:SYMBOL:TIMEFRAME")
        return cls(parts[0], parts[1], Timeframe.parse(parts[2]))

    def __str__(self) -> str:
        return f"{self.broker}:{self.symbol}:{self.timeframe}"


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed (or forming) OHLCV bar of a key; prices and volume exact."""

    key: CandleKey
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def end_ms(self) -> int:
        """First millisecond after the candle (exclusive end)."""
        return self.open_ms + self.key.timeframe.ms


# A frozen dataclass's __init__ sets each field through object.__setattr__, the price of
# `frozen`: half of what building a Candle costs. The hub's subscribers build one for every
# candle of their keys, so their decoder, which has just checked the values, fills the slots
# through their descriptors instead (the same object, equal to Candle(...), twice as fast).
_CANDLE_SLOTS: Final = tuple(getattr(Candle, name).__set__ for name in Candle.__slots__)


def candle_of(
    key: CandleKey,
    open_ms: int,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
) -> Candle:
    """`Candle(key, open_ms, open, high, low, close, volume)`, built faster (see above)."""
    candle: Candle = object.__new__(Candle)
    set_key, set_open_ms, set_open, set_high, set_low, set_close, set_volume = _CANDLE_SLOTS
    set_key(candle, key)
    set_open_ms(candle, open_ms)
    set_open(candle, open)
    set_high(candle, high)
    set_low(candle, low)
    set_close(candle, close)
    set_volume(candle, volume)
    return candle


@dataclass(frozen=True, slots=True)
class Trade:
    """One print on an exchange: time (epoch ms), price, size."""

    symbol: str
    ts_ms: int
    price: Decimal
    size: Decimal
