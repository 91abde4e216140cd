"""Historical data on disk (spec.md `--data PATH`): where a symbol's data is, and its rows.

Three layouts, or one of them per symbol (`--data SYMBOL=PATH`): one candle CSV used for every
stream; a folder of `<SYMBOL>.csv` candle files; a
qkt 0.13 data root of tick files `symbols/<SYMBOL>/<YYYY-MM-DD>.csv[.gz]`. Readers stream rows
(one at a time, nothing kept) and stop at the first bad one with a `UserError` naming file:line.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import Final, Literal, NoReturn, TextIO

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


DataPaths = Path | Mapping[str, Path]  # one path, or a path per symbol (`--data SYM=PATH`)


def locate(data: DataPaths, symbol: str) -> Source:
    """Where `symbol`'s data is under `data`; a UserError says what was expected if absent."""
    if not isinstance(data, Path):
        mapped = data.get(symbol)
        if mapped is None:
            known = ", ".join(f"{name}={path}" for name, path in data.items())
            raise UserError(f"no --data for {symbol} (given: {known}); add --data {symbol}=FILE")
        return locate(mapped, symbol)
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


# Epoch timestamps in digits: below 1e11 they are seconds (1e11 ms is March 1973, 1e11 s the year
# 5138), from 1e14 microseconds, from 1e17 nanoseconds.
_SECONDS_BELOW: Final = 100_000_000_000
_MICROS_FROM: Final = 100_000_000_000_000
_NANOS_FROM: Final = 100_000_000_000_000_000


def parse_timestamp(text: str) -> int:
    """Epoch seconds, ms, µs or ns (digits; the unit told by the size) or ISO 8601 (UTC unless
    it names an offset) -> epoch ms."""
    text = text.strip()
    if text.isdigit():
        return epoch_ms(int(text))
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic: a float timestamp could land a millisecond off.
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def epoch_ms(number: int) -> int:
    """An epoch number in seconds, ms, µs or ns (told by its size) as epoch ms."""
    if number < _SECONDS_BELOW:
        return number * 1000
    if number >= _NANOS_FROM:
        return number // 1_000_000
    if number >= _MICROS_FROM:
        return number // 1000
    return number


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
    """A candle CSV's rows in time order: (open ms, open, high, low, close, volume, line).

    Rows are split in blocks (`_rows`), numbers parsed straight into Decimal and checked at
    once; a row that fails is diagnosed again slowly, so that the error names its file, line,
    column and field.
    """
    with _open(path) as handle:
        header = next(csv.reader([handle.readline()]), None)
        at = _columns(path, header, CANDLE_COLUMNS)
        t_at, o_at, h_at, l_at, c_at, v_at = at
        width = max(at) + 1
        previous = -1
        number = Decimal  # a local: this loop runs once per row of possibly millions
        last_close, c = "", Decimal(0)  # a candle usually opens at the last one's close
        for line, fields in _rows(handle, len(header or ())):
            if len(fields) < width:
                text = ",".join(fields)
                if not text.strip():
                    continue
                _diagnose(path, line, text, fields, at)
            try:
                stamp = fields[t_at]
                if stamp.isdigit():
                    ts = int(stamp)
                    if not _SECONDS_BELOW <= ts < _MICROS_FROM:  # not ms already
                        ts = epoch_ms(ts)
                else:
                    ts = parse_timestamp(stamp)
                text = fields[o_at]
                o = c if text == last_close else number(text)
                last_close = fields[c_at]
                h, lo, c, v = (
                    number(fields[h_at]),
                    number(fields[l_at]),
                    number(last_close),
                    number(fields[v_at]),
                )
                sound = (
                    lo > 0 and h.is_finite() and v.is_finite() and v >= 0
                    and lo <= o <= h and lo <= c <= h
                )  # fmt: skip
            except (ValueError, ArithmeticError):
                sound = False
            if not sound:
                _diagnose(path, line, ",".join(fields), fields, at)
            if ts <= previous:
                raise UserError(f"{path}:{line}: timestamps must increase ({ts} after {previous})")
            previous = ts
            yield ts, o, h, lo, c, v, line


BLOCK_BYTES: Final = 1 << 20  # rows read and split at once


def _rows(handle: TextIO, columns: int) -> Iterator[tuple[int, Sequence[str]]]:
    """(line number, fields) of every row after the header, blank ones included.

    A block of lines is joined and split on commas and newlines in one call, then cut into rows
    of `columns` fields: far cheaper than splitting line by line. Only a block where every line
    has exactly `columns - 1` commas and one newline, and no quote, is cut so (nothing can shift
    a field into another row); any other block (a blank, short or long row, a last line without
    a newline, a quoted field) is split line by line, with the csv module for a quoted row."""
    line = 2
    commas = {columns - 1}
    while lines := handle.readlines(BLOCK_BYTES):
        block = "".join(lines)
        fields = block.replace("\n", ",").split(",")
        if (
            len(fields) == columns * len(lines) + 1
            and set(map(str.count, lines, repeat(","))) == commas
            and '"' not in block
        ):
            yield from enumerate(zip(*[iter(fields)] * columns, strict=False), line)
        else:
            for number, text in enumerate(lines, line):
                yield number, text.split(",") if '"' not in text else next(csv.reader([text]))
        line += len(lines)


def _diagnose(path: Path, line: int, text: str, fields: Sequence[str], at: list[int]) -> NoReturn:
    """Raise the UserError that says what is wrong with a candle row, and where."""
    if len(fields) <= max(at):
        names = [n for n, i in zip(CANDLE_COLUMNS, at, strict=True) if i >= len(fields)]
        raise UserError(
            f"{path}:{line}: short row: {len(fields)} fields, no {','.join(names)} "
            f"(header: {','.join(CANDLE_COLUMNS)})"
        )
    starts = [0]
    for field in fields[:-1]:
        starts.append(starts[-1] + len(field) + 1)  # approximate for quoted rows

    def where(index: int) -> str:
        return f"{path}:{line}:{starts[index] + 1 if index < len(starts) else 1}"

    try:
        parse_timestamp(fields[at[0]])
    except ValueError:
        raise UserError(
            f"{where(at[0])}: timestamp: {fields[at[0]].strip()!r} is neither epoch digits nor"
            " an ISO 8601 time"
        ) from None
    values: dict[str, Decimal] = {}
    for name, index in zip(CANDLE_COLUMNS[1:], at[1:], strict=True):
        try:
            values[name] = parse_decimal(fields[index].strip())
        except ValueError:
            raise UserError(
                f"{where(index)}: {name}: {fields[index].strip()!r} is not a number"
            ) from None
        if name != "volume" and values[name] <= 0:
            raise UserError(f"{where(index)}: {name}: prices must be > 0, got {values[name]}")
        if name == "volume" and values[name] < 0:
            raise UserError(f"{where(index)}: volume: must be >= 0, got {values[name]}")
    raise UserError(f"{path}:{line}: inconsistent candle (low <= open, close <= high)")


def data_span(source: Source) -> tuple[int, int]:
    """The first and the last timestamp (epoch ms) of a symbol's data, read from its ends."""
    if source.kind == "ticks":
        first = next(read_ticks(source.paths[:1]), None)
        last = None
        for last in read_ticks(source.paths[-1:]):  # noqa: B007 - the last one is wanted
            pass
        if first is None or last is None:
            raise UserError(f"{source.paths[0]}: no ticks")
        return first[0], last[0]
    rows = read_candles(source.paths[0])
    head = next(rows, None)
    if head is None:
        raise UserError(f"{source.paths[0]}: no candles")
    tail = head
    if source.paths[0].name.endswith(".gz"):
        for tail in rows:  # noqa: B007 - the last one is wanted
            pass
    else:
        with source.paths[0].open("rb") as handle:
            names = [name.strip() for name in handle.readline().decode().split(",")]
            handle.seek(0, io.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            lines = [text for text in handle.read().decode().splitlines() if text.strip()]
        tail_ts = _last_timestamp(lines, names.index("timestamp"))
        return head[0], tail_ts if tail_ts is not None else head[0]
    return head[0], tail[0]


def _last_timestamp(lines: list[str], column: int) -> int | None:
    for text in reversed(lines):
        try:
            return parse_timestamp(text.split(",")[column])
        except (ValueError, IndexError):
            continue
    return None


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
        raise UserError(
            f"{path}: candles {step} ms apart are not a whole number of seconds "
            "(timestamps must be epoch seconds or ms, or ISO 8601)"
        )
    if rows[0][0] % step:
        raise UserError(f"{path}:2: {timeframe} candles must open on UTC {timeframe} boundaries")
    return timeframe
