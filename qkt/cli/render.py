"""How the CLI prints: aligned plain-text tables for humans, JSON only for `--json`.

Tables are for reading: money is rounded to cents (half-even, no thousands separators), numbers
are aligned right, times are ISO 8601 UTC. `--json` keeps every figure exact.
"""

from __future__ import annotations

import dataclasses
import decimal
import os
import sys
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any, Final

import orjson
import typer

from qkt.money import plain
from qkt.records import to_json
from qkt.timefmt import iso_utc

CENT: Final = Decimal("0.01")
# Prices under 1 (a few altcoins) keep up to this many decimals: 0.08123, not 0.08.
_SMALL_PRICE_PLACES: Final = 6


def print_json(value: Any) -> None:
    """`value` (JSON, a wire record, or a list of them) as indented JSON on stdout, nothing else."""
    if isinstance(value, list):
        value = [_plain(item) for item in value]
    text = orjson.dumps(_plain(value), option=orjson.OPT_INDENT_2).decode()
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _plain(value: Any) -> Any:
    """A wire record as the JSON object it came as (its `to_json`); anything else as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    return value


# ANSI SGR codes: states by how worrying they are; money by its sign.
STATE_COLOURS: Final = {
    "running": "32",
    "starting": "36",
    "restarting": "33",
    "backoff": "33",
    "stopping": "36",
    "stopped": "2",
    "crashed": "31",
    "failed": "1;31",
}
MONEY_COLUMNS: Final = frozenset({"PNL", "REALIZED", "UNREALIZED"})


def colour_wanted(stream: Any = None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(header: str, text: str) -> str:
    """`text` (already padded) in its colour: a state by its kind, a PnL by its sign."""
    code = None
    value = text.strip()
    if header == "STATE":
        code = STATE_COLOURS.get(value)
    elif header in MONEY_COLUMNS and value not in ("", "-"):
        code = "31" if value.startswith("-") else ("32" if value.strip("0.") else None)
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    right: Collection[str] = (),
    colour: bool = False,
) -> str:
    """Columns padded to their widest cell, two spaces apart; None prints as `-`.

    A column of numbers (ints, Decimals) is aligned right, and so is every column named in
    `right`; the others are aligned left. With `colour`, states and PnL are coloured (after
    padding, so the escapes never shift a column).
    """
    cells = [[cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    to_right = [
        header in right or _numeric([row[i] for row in rows]) for i, header in enumerate(headers)
    ]
    out = []
    for n, line in enumerate([list(headers), *cells]):
        padded = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(line, widths, to_right, strict=True)
        ]
        if colour and n > 0:
            # The last cell is not padded on the right (lines have no trailing blanks).
            padded[-1] = padded[-1].rstrip()
            padded = [paint(h, c) for h, c in zip(headers, padded, strict=True)]
        out.append("  ".join(padded).rstrip())
    return "\n".join(out)


def _numeric(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | Decimal) and not isinstance(v, bool) for v in present
    )


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Collection[str] = ()
) -> None:
    """The table on stdout, coloured when stdout is a terminal (and NO_COLOR is unset)."""
    typer.echo(table(headers, rows, right, colour=colour_wanted()))


def cell(value: Any) -> str:
    """One value as table text: `-` for nothing, yes/no, decimals without exponent."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return plain(value)
    return str(value)


def money(value: Any) -> Decimal | None:
    """A money figure (an exact decimal string) rounded to cents, half-even; None if absent.

    For reading only: what `--json` prints stays exact.
    """
    number = _decimal(value)
    if number is None:
        return None
    rounded = number.quantize(CENT, rounding=decimal.ROUND_HALF_EVEN)
    return rounded if rounded != 0 else abs(rounded)  # no "-0.00"


def price(value: Any) -> Decimal | None:
    """A price for reading: cents from 1 up; below 1, the decimals it needs (2 to 6)."""
    number = _decimal(value)
    if number is None or abs(number) >= 1:
        return money(value)
    places = Decimal(1).scaleb(-_SMALL_PRICE_PLACES)
    text = format(number.quantize(places, rounding=decimal.ROUND_HALF_EVEN), "f")
    whole, _, fraction = text.partition(".")
    return Decimal(f"{whole}.{fraction.rstrip('0').ljust(2, '0')}")


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except decimal.InvalidOperation:
        return None
    return number if number.is_finite() else None


def iso_time(epoch_ms: Any) -> str:
    """Epoch milliseconds as `2026-11-24T23:00:36Z` (UTC, to the second); `-` for nothing."""
    if not isinstance(epoch_ms, int) or isinstance(epoch_ms, bool):
        return "-"
    try:
        return iso_utc(epoch_ms, millis=False)
    except (OverflowError, OSError, ValueError):
        return str(epoch_ms)


def duration(ms: int | None) -> str:
    """`45s`, `12m05s`, `3h07m`, `2d04h`; `-` for nothing."""
    if not ms:
        return "-"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
