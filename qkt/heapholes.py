"""`plug_heap_holes()`: the fork server's heaps without free holes before it forks.

glibc's malloc hands out a free chunk of the right size (from its per-thread cache or its bins)
before it carves new memory from the top of the heap. After the imports and the rehearsal, the
fork server's heap holds a few hundred small free chunks scattered over its ~13 MiB. A forked
worker's first allocations (SQLite's pages and statements, uvicorn's buffers, every Python
object over 512 bytes) would land in those holes, and each page holding one would become a
private copy in that worker: a whole 4 KiB page for a few dozen bytes, hundreds of times over.

Taking every free chunk now and keeping it (a few hundred KiB of the fork server's, shared by
all its workers) makes the workers' allocations start at the top of the heap, packed into
pages of their own: about 0.8 MiB less private memory per worker (docs/performance.md).

Python's own allocator (objects up to 512 bytes, in 16 KiB pools) has the same holes, fewer:
the free blocks of its partly used pools are taken the same way, with objects of each size.

The C heap's: glibc only (`mallinfo2`, glibc 2.33+); elsewhere only Python's are plugged.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from typing import Any, Final

from qkt import osproc

_TCACHE_SIZES: Final = range(24, 1033, 16)  # requests that fill each of the 64 tcache bins
_TCACHE_COUNT: Final = 7  # chunks a tcache bin holds
_LARGEST: Final = 64 * 1024  # below the mmap threshold: served from the heap, not mmap
_TCACHE_BYTES: Final = sum(_TCACHE_SIZES) * _TCACHE_COUNT

_kept: list[int] = []  # the chunks taken: never freed (freeing them would reopen the holes)
_kept_objects: list[list[object]] = []  # the same for Python's blocks
# A line of sys._debugmallocstats(): class, size, pools, blocks in use, free blocks in them.
_POOL_LINE: Final = re.compile(rb"^\s*\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s*$", re.MULTILINE)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def plug_heap_holes() -> int:
    """Take the free blocks of Python's partly used pools, then every free chunk of the C heap
    (and of glibc's per-thread cache), and keep them; the number of C chunks taken (0 where
    malloc is not glibc's). Python's first: keeping its blocks allocates (and frees) C memory."""
    _kept_objects.append(_take_free_blocks(_free_blocks()))
    return _plug_c_heap()


def _plug_c_heap() -> int:
    libc = glibc_malloc()
    if libc is None:
        return 0
    before = len(_kept)
    for size in _TCACHE_SIZES:  # the cache first: malloc serves from it before anything
        _kept.extend(_take(libc, size) for _ in range(_TCACHE_COUNT))
    # Never more than the holes there were (and the cache's worth): whatever malloc does.
    budget = _holes(libc) + _TCACHE_BYTES
    for size in _sizes():
        while budget >= size and _holes(libc) >= size:
            before_take = libc.mallinfo2()
            chunk = _take(libc, size)
            after = libc.mallinfo2()
            if after.keepcost < before_take.keepcost or after.arena > before_take.arena:
                libc.free(chunk)  # carved from the top: no hole that size is left
                break
            _kept.append(chunk)
            budget -= size
    return len(_kept) - before


def glibc_malloc() -> Any:
    """The C library with `malloc`, `free` and `mallinfo2` declared; None if it is not glibc
    (2.33 or later)."""
    libc = osproc.libc()
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    libc.mallinfo2.argtypes = []
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.restype = None
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def holes() -> int:
    """Free bytes in the main heap outside its top chunk (0 if malloc is not glibc's)."""
    libc = glibc_malloc()
    return 0 if libc is None else _holes(libc)


def _sizes() -> list[int]:
    """Requests from large to small: halving down to 2 KiB, then every 16 bytes (each its own
    chunk size) down to the smallest chunk."""
    sizes = []
    size = _LARGEST
    while size > 2048:
        sizes.append(size)
        size //= 2
    sizes.extend(range(2048, 16, -16))
    return [size - 8 for size in sizes]  # a chunk of N bytes serves a request of N - 8


def _free_blocks() -> dict[int, int]:
    """Per block size: free blocks in Python's partly used pools (sys._debugmallocstats, which
    writes to the C stderr); {} if its report cannot be read."""
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as report:
            os.dup2(report.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
            report.seek(0)
            text = report.read()
    except OSError:
        return {}
    finally:
        os.close(saved)
    return {int(size): int(free) for size, free in _POOL_LINE.findall(text)}


def _take_free_blocks(free: dict[int, int]) -> list[object]:
    """Objects that fill the free blocks: `object()` is a 16-byte block, a float a 32-byte
    one, and a bytes object of n bytes a (33 + n)-byte one."""
    kept: list[object] = [None] * sum(free.values())  # sized once: growing it would free blocks
    i = 0
    for size, count in free.items():
        for _ in range(count):
            if size == 16:
                kept[i] = object()
            elif size == 32:
                kept[i] = float(i) + 0.5  # not a cached constant: a new float
            else:
                kept[i] = b"\x01" * (size - 33)
            i += 1
    return kept


def _holes(libc: Any) -> int:
    """Free bytes in the heap outside its top chunk."""
    info = libc.mallinfo2()
    return int(info.fordblks - info.keepcost)


def _take(libc: Any, size: int) -> int:
    chunk = libc.malloc(size)
    if not chunk:
        raise MemoryError("malloc failed while plugging the heap's holes")
    return int(chunk)
