"""The fork server's heap is left without free holes before it forks (glibc only)."""

from __future__ import annotations

import pytest

from qkt.supervisor.heapholes import glibc_malloc, holes, plug_heap_holes

libc = glibc_malloc()
pytestmark = pytest.mark.skipif(libc is None, reason="glibc's malloc only (mallinfo2)")


def test_plugging_takes_the_free_chunks_between_chunks_in_use() -> None:
    # Holes of many sizes, between chunks that stay in use.
    chunks = [libc.malloc(40 + (i % 50) * 48) for i in range(400)]
    for chunk in chunks[::2]:
        libc.free(chunk)
    assert holes() > 100_000

    assert plug_heap_holes() > 0

    assert holes() < 16 * 1024  # at most a few odd remainders
    for chunk in chunks[1::2]:
        libc.free(chunk)
