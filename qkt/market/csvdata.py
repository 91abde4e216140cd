"""Historical data on disk (spec.md `--data PATH`): where a symbol's data is, and its rows.

Three layouts: one candle CSV used for every stream; a folder of `<SYMBOL>.csv` candle files; a
qkt 0.13 data root of tick files `symbols/<SYMBOL>/<YYYY-MM-DD>.csv[.gz]`. Readers stream rows
(one at a time, nothing kept) and stop at the first bad one with a `UserError` naming file:line.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal, TextIO

from qkt.errors import UserError
from qkt.market.models import UNIT_MS, Timeframe
from qkt.money import parse_decimal

CANDLE_COLUMNS: Final = ("timestamp", "open", "high", "low", "close", "volume")
TICK_COLUMNS: Final = (
    "timestamp", "symbol", "price", "volume", "bid", "ask", "bidVolume", "askVolume"
)  # fmt: skip
SNIFF_ROWS: Final = 1_000  # rows read ahead to learn a candle file's timeframe

CandleRow = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, int]  # ..., line number
TickRow = tuple[int, Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Source:
    """A symbol's data: one candle file, or the tick files of a 0.13 root in date order."""

    kind: Literal["candles", "ticks"]
    paths: tuple[Path, ...]


def locate(data: Path, symbol: str) -> Source:
    """Where `symbol`'s data is under `data`; a UserError says what was expected if absent."""
    if data.is_file():
        return Source("candles", (data,))
    if not data.is_dir():
        raise UserError(f"no data at {data}: expected a candle CSV, a folder or a data root")
    root = data / "symbols"
    if root.is_dir():
        folder = root / symbol
        days = sorted(
            (p for p in folder.glob("*.csv*") if p.name.endswith((".csv", ".csv.gz"))),
            key=lambda p: p.name,
        )
        if not days:
            raise UserError(f"no data for {symbol} in {data} (expected {folder}/<YYYY-MM-DD>.csv)")
        return Source("ticks", tuple(days))
    for name in (f"{symbol}.csv", f"{symbol}.csv.gz"):
        if (data / name).is_file():
            return Source("candles", (data / name,))
    raise UserError(f"no data for {symbol} in {data} (expected {data / (symbol + '.csv')})")


def parse_timestamp(text: str) -> int:
    """Epoch ms (digits) or ISO 8601 (UTC unless it names an offset) -> epoch ms."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic: a float timestamp could land a millisecond off.
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _open(path: Path) -> TextIO:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _columns(path: Path, header: list[str] | None, wanted: tuple[str, ...]) -> list[int]:
    names = [name.strip() for name in header or []]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise UserError(
            f"{path}:1: expected a header with {','.join(wanted)} (missing {','.join(missing)})"
        )
    return [names.index(name) for name in wanted]


def read_candles(path: Path) -> Iterator[CandleRow]:
    """A candle CSV's rows in time order: (open ms, open, high, low, close, volume, line)."""
    with _open(path) as handle:
        reader = csv.reader(handle)
        at = _columns(path, next(reader, None), CANDLE_COLUMNS)
        previous = -1
        for line, row in enumerate(reader, start=2):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            try:
                ts = parse_timestamp(row[at[0]])
                o, h, lo, c, v = (parse_decimal(row[i].strip()) for i in at[1:])
            except (ValueError, IndexError) as error:
                raise UserError(f"{path}:{line}: bad candle row {row!r}: {error}") from None
            if not lo <= min(o, c) <= max(o, c) <= h or v < 0:
                raise UserError(f"{path}:{line}: inconsistent candle (low <= open, close <= high)")
            if ts <= previous:
                raise UserError(f"{path}:{line}: timestamps must increase ({ts} after {previous})")
            previous = ts
            yield ts, o, h, lo, c, v, line


def read_ticks(paths: tuple[Path, ...]) -> Iterator[TickRow]:
    """The trades of a symbol's tick files, in time order: (time ms, price, size)."""
    previous = -1
    for path in paths:
        with _open(path) as handle:
            reader = csv.reader(handle)
            at = _columns(path, next(reader, None), TICK_COLUMNS)
            ts_at, price_at, size_at = at[0], at[2], at[3]
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    ts = parse_timestamp(row[ts_at])
                    price = parse_decimal(row[price_at].strip())
                    size = parse_decimal(row[size_at].strip())
                except (ValueError, IndexError) as error:
                    raise UserError(f"{path}:{line}: bad tick row {row!r}: {error}") from None
                if price <= 0 or size < 0:
                    raise UserError(f"{path}:{line}: price must be > 0 and volume >= 0")
                if ts < previous:
                    raise UserError(f"{path}:{line}: timestamps go backwards ({ts} < {previous})")
                previous = ts
                yield ts, price, size


def sniff_timeframe(path: Path, rows: list[CandleRow]) -> Timeframe:
    """The candle length of a file from its first rows: the gcd of their spacings."""
    if len(rows) < 2:
        raise UserError(f"{path}: need at least two candles to tell their timeframe")
    step = math.gcd(*(b[0] - a[0] for a, b in zip(rows, rows[1:], strict=False)))
    for unit in ("d", "h", "m", "s"):
        if step % UNIT_MS[unit] == 0:
            timeframe = Timeframe.parse(f"{step // UNIT_MS[unit]}{unit}")
            break
    else:
        raise UserError(f"{path}: candles {step} ms apart are not a whole number of seconds")
    if rows[0][0] % step:
        raise UserError(f"{path}:2: {timeframe} candles must open on UTC {timeframe} boundaries")
    return timeframe
