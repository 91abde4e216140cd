"""Reading a strategy's log file: the last N lines, lines since a time, and following it."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from qkt.errors import UserError

_BLOCK: Final = 64 * 1024
_RELATIVE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The timestamp qkt.log writes at the start of every line: 2026-05-08T15:02:14.234Z
_STAMP: Final = re.compile(rb"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) ")
FOLLOW_POLL_S: Final = 0.2


def parse_since(text: str, now: float | None = None) -> float:
    """`--since` as epoch seconds: ISO 8601 (`2026-05-08T15:02:14Z`), epoch s or ms, or a
    relative age (`90s`, `10m`, `2h`, `1d`)."""
    value = text.strip()
    now = time.time() if now is None else now
    relative = _RELATIVE.fullmatch(value)
    if relative and len(value) <= 16:
        return now - float(relative.group(1)) * _UNIT_S[relative.group(2)]
    if value.isdigit() and len(value) <= 16:
        number = int(value)
        return number / 1000 if number >= 100_000_000_000 else float(number)  # ms vs s
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # log times are UTC
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise UserError(
            f"bad since {text!r}: use an ISO 8601 time (2026-05-08T15:02:14Z), epoch seconds "
            "or milliseconds, or an age such as 90s, 10m, 2h, 1d"
        ) from None


def line_time(line: bytes) -> float | None:
    """The epoch seconds of a log line's leading timestamp, or None (a traceback line...)."""
    match = _STAMP.match(line)
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00")).timestamp()


def _reverse_lines(f: BinaryIO, end: int) -> Iterator[bytes]:
    """The lines of `f` before byte `end`, last first, read in blocks from the end."""
    position, tail = end, b""
    while position > 0:
        step = min(_BLOCK, position)
        position -= step
        f.seek(position)
        parts = (f.read(step) + tail).split(b"\n")
        tail = parts[0]
        yield from reversed(parts[1:])
    yield tail


def read_tail(path: Path, lines: int, since: float | None = None) -> tuple[list[str], int]:
    """The last `lines` lines (with `since`: only those at or after it) and the file's size.

    A line without a timestamp (a traceback) goes with the stamped line before it.
    """
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        lines_back = _reverse_lines(f, size)
        # The bytes after the last newline are a line still being written: leave it to follow().
        size -= len(next(lines_back, b""))
        picked = _pick(lines_back, lines, since)
    chosen = list(reversed(picked))[-lines:] if lines > 0 else []
    return [line.decode("utf-8", errors="replace") for line in chosen], size


def _pick(lines_back: Iterator[bytes], lines: int, since: float | None) -> list[bytes]:
    picked: list[bytes] = []
    pending: list[bytes] = []  # unstamped lines waiting for the stamped line they belong to
    if lines <= 0:
        return picked
    for line in lines_back:
        stamp = line_time(line) if since is not None else 0.0
        if stamp is None:
            pending.append(line)
            continue
        if since is not None and stamp < since:
            break
        picked.extend(pending)
        pending.clear()
        picked.append(line)
        if len(picked) >= lines:
            break
    if since is None:
        picked.extend(pending)
    return picked


async def follow(path: Path, offset: int, stopped: Callable[[], bool]) -> AsyncIterator[bytes]:
    """Yield whatever is appended to `path` after `offset`, until `stopped()` says so.

    Polls the file's size; a file that shrank (truncated, replaced) is read again from the top.
    """
    while not stopped():
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < offset:
            offset = 0
        if size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(size - offset)
            cut = data.rfind(b"\n") + 1  # whole lines only; the rest comes with the next poll
            if cut:
                offset += cut
                yield data[:cut]
        await asyncio.sleep(FOLLOW_POLL_S)
