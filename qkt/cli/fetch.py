"""`qkt fetch KEY --from D --to D [-o FILE]`: closed candles into the CSV `qkt backtest` reads.

Candles come from the same history source the daemon backfills from (`SIM` offline, Bybit over
REST). The file is appended to page by page, so an interrupted fetch keeps what it got, and a
second run starts after the file's last row: resumable, and never a duplicate row.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qkt.errors import UserError

if TYPE_CHECKING:  # the modules load inside the command: `qkt --version` stays light
    from qkt.market.history import HistorySource
    from qkt.market.models import CandleKey

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DAY_MS = 86_400_000


def fetch_command(
    key_text: Annotated[
        str, typer.Argument(metavar="KEY", help="BROKER:SYMBOL:TIMEFRAME, e.g. BYBIT:BTCUSDT:1h.")
    ],
    start: Annotated[str, typer.Option("--from", help="Start: a date or ISO datetime (UTC).")],
    end: Annotated[
        str,
        typer.Option(
            "--to",
            help="End (UTC): a date is included whole; a datetime is the first moment left out.",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="CSV to write or extend [default: BROKER_SYMBOL_TF.csv]."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="SIM: the market's seed.")] = 0,
    rest_url: Annotated[
        str, typer.Option("--rest-url", help="Bybit REST base URL.")
    ] = "https://api.bybit.com",
    retries: Annotated[
        int, typer.Option("--retries", help="Retries of a failed request before giving up.")
    ] = 4,
) -> None:
    """Download closed candles of KEY between two dates into a candle CSV."""
    from qkt.market.csvdata import CANDLE_COLUMNS, parse_timestamp
    from qkt.market.feed import FeedOptions
    from qkt.market.models import CandleKey, TimeframeError
    from qkt.market.registry import open_history

    try:
        key = CandleKey.parse(key_text)
    except (ValueError, TimeframeError) as error:
        raise UserError(str(error)) from None
    start_ms = _moment("--from", start, parse_timestamp)
    end_ms = _moment("--to", end, parse_timestamp)
    if _DATE_ONLY.fullmatch(end.strip()):
        end_ms += _DAY_MS
    if end_ms <= start_ms:
        raise UserError(f"--to ({end}) must be after --from ({start})")
    path = output or Path(f"{key.broker}_{key.symbol}_{key.timeframe}.csv")
    header = ",".join(CANDLE_COLUMNS)
    last = _last_open_ms(path, header, parse_timestamp)
    first = start_ms if last is None else max(start_ms, last + key.timeframe.ms)
    source = open_history(
        key.broker, FeedOptions(seed=seed, bybit_rest_url=rest_url, rest_retries=retries)
    )
    if last is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "\n")
    written = asyncio.run(_download(source, key, first, end_ms, path))
    kept = "" if last is None else " after the rows already there"
    typer.echo(f"{written:,} candles of {key} written to {path}{kept}")


def _moment(flag: str, text: str, parse: Callable[[str], int]) -> int:
    try:
        return parse(text)
    except ValueError:
        raise UserError(
            f"{flag} takes a date or an ISO 8601 datetime (UTC), e.g. 2026-01-31, got {text!r}"
        ) from None


def _last_open_ms(path: Path, header: str, parse: Callable[[str], int]) -> int | None:
    """The open time of the file's last row; None for a missing or empty file."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    if path.is_dir():
        raise UserError(f"{path} is a folder; -o takes a file")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != header:
        raise UserError(f"{path} is not a candle CSV written by qkt fetch (header {header})")
    rows = [line for line in lines[1:] if line.strip()]
    if not rows:
        return None
    try:
        return parse(rows[-1].split(",", 1)[0])
    except ValueError:
        raise UserError(f"{path}:{len(lines)}: cannot read the last row's timestamp") from None


async def _download(
    history: HistorySource, key: CandleKey, start: int, end: int, path: Path
) -> int:
    from qkt.market.history import HistoryError

    total = max(0, (end - start) // key.timeframe.ms)
    written = 0
    progress = _Progress(total) if sys.stderr.isatty() else None
    try:
        with path.open("a", encoding="utf-8") as out:
            async for page in history.pages(key, start, end):
                out.writelines(
                    f"{c.open_ms},{c.open},{c.high},{c.low},{c.close},{c.volume}\n" for c in page
                )
                out.flush()  # a fetch cut short keeps every whole page: the next run resumes
                written += len(page)
                if progress is not None:
                    progress.to((page[-1].end_ms - start) // key.timeframe.ms, written)
    except HistoryError as error:
        raise UserError(f"cannot fetch {key}: {error.reason}") from None
    finally:
        if progress is not None:
            progress.close()
        await history.aclose()
    return written


class _Progress:
    """A transient rich progress bar on stderr."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("fetch"),
            BarColumn(),
            TextColumn("{task.fields[candles]:,} candles"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("fetch", total=total, candles=0)

    def to(self, done: int, candles: int) -> None:
        self._bar.update(self._task, completed=done, candles=candles)

    def close(self) -> None:
        self._bar.stop()
