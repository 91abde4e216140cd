"""Defects 4 and 13 (reading logs): a 50 MB line or a 300 MB burst must cost a few blocks.

Before: `GET /logs` on a log with one 50 MB line blocked the daemon's loop for 14.4 s (the line
was rebuilt block by block from the end), and `qkt logs -f` during a burst read the whole backlog
at once (daemon RSS 126 -> 495 MB).
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from qkt.supervisor.logs import CUT_MARKER, FOLLOW_CHUNK, MAX_LINE, follow, read_tail

T = TypeVar("T")
HUGE = 50 * 1024 * 1024
STAMP = "2026-05-08T15:02:14.234Z INFO  qkt.worker: "


def peak_memory(work: Callable[[], T]) -> tuple[T, int]:
    """`work()` and the most memory Python allocated while it ran."""
    tracemalloc.start()
    try:
        return work(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def a_log_with_a_huge_line(path: Path) -> None:
    with open(path, "wb") as f:
        f.write(f"{STAMP}before\n".encode())
        f.write(STAMP.encode())
        for _ in range(HUGE // (1024 * 1024)):
            f.write(b"x" * (1024 * 1024))
        f.write(b"\n")
        f.write(f"{STAMP}after\n".encode())


def test_the_tail_of_a_log_with_a_50_mb_line_is_cut_and_cheap(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    a_log_with_a_huge_line(path)

    (lines, size), peak = peak_memory(lambda: read_tail(path, 10))

    assert size == path.stat().st_size
    assert len(lines) == 3
    assert lines[0].endswith("before") and lines[2].endswith("after")
    assert lines[1].startswith(STAMP + "xxx") and lines[1].endswith(CUT_MARKER.decode())
    assert len(lines[1]) == MAX_LINE + len(CUT_MARKER)
    assert peak < 2 * 1024 * 1024, f"{peak} bytes for a tail of 3 lines"


def test_a_since_tail_still_finds_stamped_lines_around_a_huge_one(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    a_log_with_a_huge_line(path)
    lines, _ = read_tail(path, 100, since=0)
    assert lines[0].endswith("before") and lines[2].endswith("after")
    assert lines[1].endswith(CUT_MARKER.decode()) and len(lines) == 3


def collect_follow(path: Path, until: bytes) -> list[bytes]:
    chunks: list[bytes] = []

    async def run() -> None:
        async for chunk in follow(path, 0, lambda: bool(chunks) and until in chunks[-1]):
            chunks.append(chunk)

    asyncio.run(asyncio.wait_for(run(), 120))
    return chunks


def test_following_a_50_mb_line_yields_it_cut_in_small_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    a_log_with_a_huge_line(path)

    chunks, peak = peak_memory(lambda: collect_follow(path, b"after"))

    text = b"".join(chunks)
    assert text.splitlines() == [
        f"{STAMP}before".encode(),
        (STAMP.encode() + b"x" * MAX_LINE)[:MAX_LINE] + CUT_MARKER,
        f"{STAMP}after".encode(),
    ]
    assert max(map(len, chunks)) <= FOLLOW_CHUNK + len(CUT_MARKER) + 1
    assert peak < 4 * FOLLOW_CHUNK, f"{peak} bytes to follow a 50 MB line"


def test_following_a_burst_reads_it_chunk_by_chunk(tmp_path: Path) -> None:
    path = tmp_path / "burst.log"
    line = f"{STAMP}{'y' * 100}\n".encode()
    count = (20 * 1024 * 1024) // len(line)
    with open(path, "wb") as f:
        for _ in range(count // 1000):
            f.write(line * 1000)
        f.write(f"{STAMP}the end\n".encode())

    chunks, peak = peak_memory(lambda: collect_follow(path, b"the end"))

    assert b"".join(chunks).count(b"\n") == count // 1000 * 1000 + 1
    assert max(map(len, chunks)) <= FOLLOW_CHUNK
    assert peak < 4 * FOLLOW_CHUNK + sum(map(len, chunks)), "more than the chunks kept by the test"


def test_a_line_still_being_written_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "slow.log"
    path.write_bytes(f"{STAMP}one\n{STAMP}half".encode())
    lines, size = read_tail(path, 10)
    assert lines == [f"{STAMP}one"] and size == len(f"{STAMP}one\n")
