"""`plug_heap_holes()`: the fork server's C heap without free holes before it forks.

glibc's malloc hands out a free chunk of the right size (from its per-thread cache or its bins)
before it carves new memory from the top of the heap. After the imports and the rehearsal, the
fork server's heap holds a few hundred small free chunks scattered over its ~13 MiB. A forked
worker's first allocations (SQLite's pages and statements, uvicorn's buffers, every Python
object over 512 bytes) would land in those holes, and each page holding one would become a
private copy in that worker: a whole 4 KiB page for a few dozen bytes, hundreds of times over.

Taking every free chunk now and keeping it (a few hundred KiB of the fork server's, shared by
all its workers) makes the workers' allocations start at the top of the heap, packed into
pages of their own: about 0.8 MiB less private memory per worker (docs/performance.md).

glibc only (`mallinfo2`, glibc 2.33+): elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
from typing import Any, Final

from qkt import osproc

_TCACHE_SIZES: Final = range(24, 1033, 16)  # requests that fill each of the 64 tcache bins
_TCACHE_COUNT: Final = 7  # chunks a tcache bin holds
_LARGEST: Final = 64 * 1024  # below the mmap threshold: served from the heap, not mmap
_MAX_CHUNKS: Final = 100_000  # a bound, whatever the allocator does

_kept: list[int] = []  # the chunks taken: never freed (freeing them would reopen the holes)


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
    """Take every free chunk of the main heap (and of glibc's per-thread cache) and keep it;
    the number of chunks taken (0 where malloc is not glibc's)."""
    libc = glibc_malloc()
    if libc is None:
        return 0
    before = len(_kept)
    for size in _TCACHE_SIZES:  # the cache first: malloc serves from it before anything
        _kept.extend(_take(libc, size) for _ in range(_TCACHE_COUNT))
    for size in _sizes():
        while len(_kept) < _MAX_CHUNKS and _holes(libc) >= size:
            top = libc.mallinfo2().keepcost
            chunk = _take(libc, size)
            if libc.mallinfo2().keepcost < top:  # carved from the top: no hole that size left
                libc.free(chunk)
                break
            _kept.append(chunk)
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


def _holes(libc: Any) -> int:
    """Free bytes in the heap outside its top chunk."""
    info = libc.mallinfo2()
    return int(info.fordblks - info.keepcost)


def _take(libc: Any, size: int) -> int:
    chunk = libc.malloc(size)
    if not chunk:
        raise MemoryError("malloc failed while plugging the heap's holes")
    return int(chunk)
