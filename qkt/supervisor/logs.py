"""Reading a strategy's log file: the last N lines, lines since a time, and following it.

Every read is bounded, whatever the file holds: the file is scanned in blocks, a line longer than
MAX_LINE bytes is cut there with a marker, and `follow` reads at most FOLLOW_CHUNK bytes at a
time. A log with one 50 MB line (or a 300 MB burst) costs a few blocks of memory, not its size.
"""

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
MAX_LINE: Final = 16 * 1024  # bytes of one line shown; the rest is cut
CUT_MARKER: Final = b" [... line cut: longer than 16384 bytes]"
FOLLOW_CHUNK: Final = 256 * 1024
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


def _line_spans_back(f: BinaryIO, end: int) -> Iterator[tuple[int, int]]:
    """(start, stop) byte offsets of the lines of `f` before byte `end`, last first (stop is
    the offset of the line's newline): newlines found block by block, no line held in memory."""
    stop = position = end
    while position > 0:
        step = min(_BLOCK, position)
        position -= step
        f.seek(position)
        block = f.read(step)
        cut = len(block)
        while (newline := block.rfind(b"\n", 0, cut)) >= 0:
            yield position + newline + 1, stop
            stop = position + newline
            cut = newline
    yield 0, stop


def _read_span(f: BinaryIO, start: int, stop: int) -> bytes:
    """The line at [start, stop), cut at MAX_LINE bytes with a marker."""
    f.seek(start)
    if stop - start <= MAX_LINE:
        return f.read(stop - start)
    return f.read(MAX_LINE) + CUT_MARKER


def read_tail(path: Path, lines: int, since: float | None = None) -> tuple[list[str], int]:
    """The last `lines` lines (with `since`: only those at or after it) and the file's size.

    A line without a timestamp (a traceback) goes with the stamped line before it.
    """
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        spans = _line_spans_back(f, size)
        # The bytes after the last newline are a line still being written: leave it to follow().
        size = next(spans)[0]
        lines_back = (_read_span(f, start, stop) for start, stop in spans)
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
    Whole lines only, at most FOLLOW_CHUNK bytes per read; a line longer than MAX_LINE is cut.
    """
    cutting = False  # inside a line already cut: drop its bytes up to its newline
    while not stopped():
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < offset:
            offset, cutting = 0, False
        while size > offset and not stopped():
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(min(size - offset, FOLLOW_CHUNK))
            lines, used, cutting = whole_lines(data, cutting)
            if not used:
                break  # a short line still being written: it comes with a later poll
            offset += used
            if lines:
                yield lines
            await asyncio.sleep(0)  # a big backlog goes out chunk by chunk, others get turns
        await asyncio.sleep(FOLLOW_POLL_S)


def whole_lines(data: bytes, cutting: bool) -> tuple[bytes, int, bool]:
    """The whole lines at the start of `data` (long ones cut), the bytes used, and whether the
    next read starts inside a cut line."""
    used = 0
    if cutting:
        newline = data.find(b"\n")
        if newline < 0:
            return b"", len(data), True
        used = newline + 1
    end = data.rfind(b"\n", used) + 1
    shown = [_cut(line) for line in data[used : end - 1].split(b"\n")] if end > used else []
    rest = len(data) - max(end, used)
    if rest > MAX_LINE:  # a line in progress already too long: show its start, skip the rest
        shown.append(data[max(end, used) :][:MAX_LINE] + CUT_MARKER)
        return b"\n".join(shown) + b"\n", len(data), True
    return (b"\n".join(shown) + b"\n" if shown else b""), max(end, used), False


def _cut(line: bytes) -> bytes:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + CUT_MARKER


def rotated_files(path: Path) -> list[Path]:
    """`path` and its rotated copies, newest first: `x.log`, `x.log.1`, `x.log.2`, ..."""
    found = [path]
    number = 1
    while (older := path.with_name(f"{path.name}.{number}")).exists():
        found.append(older)
        number += 1
    return found


def read_tail_across(
    path: Path, lines: int, since: float | None = None, grep: str | None = None
) -> tuple[list[str], int]:
    """`read_tail` over the log and its rotated copies (the newest lines, whichever file holds
    them), keeping only lines that contain `grep`; the current file's size, for `follow`."""
    needle = grep.encode("utf-8") if grep else None
    picked: list[bytes] = []
    size = 0
    for number, file in enumerate(rotated_files(path)):
        try:
            f = open(file, "rb")
        except FileNotFoundError:
            continue
        with f:
            end = f.seek(0, os.SEEK_END)
            spans = _line_spans_back(f, end)
            complete = next(spans)[0]  # a line still being written is left to follow()
            if number == 0:
                size = complete
            back: Iterator[bytes] = (_read_span(f, start, stop) for start, stop in spans)
            if needle is not None:
                back = (line for line in back if needle in line)
            got = _pick(back, lines - len(picked), since)
            picked.extend(got)
            if since is not None and got and len(got) < lines and _older_than(f, since):
                break  # this file already reaches back past `since`: older ones are older
        if len(picked) >= lines:
            break
    chosen = list(reversed(picked))[-lines:] if lines > 0 else []
    return [line.decode("utf-8", errors="replace") for line in chosen], size


def _older_than(f: BinaryIO, since: float) -> bool:
    f.seek(0)
    stamp = line_time(f.readline(MAX_LINE))
    return stamp is not None and stamp < since


def keep_matching(chunk: bytes, grep: str | None) -> bytes:
    """The lines of `chunk` (whole lines) that contain `grep` (all of them without one)."""
    if not grep:
        return chunk
    needle = grep.encode("utf-8")
    kept = [line for line in chunk.split(b"\n")[:-1] if needle in line]
    return b"".join(line + b"\n" for line in kept)
