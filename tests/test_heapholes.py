"""The fork server's heaps are left without free holes before it forks."""

from __future__ import annotations

import json
import subprocess

import pytest

from qkt.heapholes import glibc_malloc
from tests.helpers import PYTHON

# In a fresh interpreter, as the fork server: a test process's heap depends on what ran before.
SCENARIO = """
import json
from qkt import heapholes
libc = heapholes.glibc_malloc()
chunks = [libc.malloc(40 + (i % 50) * 48) for i in range(400)]  # holes of many sizes,
for chunk in chunks[::2]:  # between chunks that stay in use
    libc.free(chunk)
blocks = [b"x" * (i % 400) for i in range(20000)]
del blocks[::3]  # and free blocks in Python's pools
before = heapholes.holes(), sum(heapholes._free_blocks().values())
taken = heapholes.plug_heap_holes()
after = heapholes.holes(), sum(heapholes._free_blocks().values())
print(json.dumps({"before": before, "taken": taken, "after": after}))
"""


@pytest.mark.skipif(glibc_malloc() is None, reason="glibc's malloc only (mallinfo2)")
def test_plugging_takes_the_free_chunks_and_blocks_between_those_in_use() -> None:
    done = subprocess.run([PYTHON, "-c", SCENARIO], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    (c_before, py_before), (c_after, py_after) = found["before"], found["after"]
    assert c_before > 100_000 and found["taken"] > 200
    assert c_after < 16 * 1024  # the C heap: at most a few odd remainders
    # Python's: what is left is mostly fresh pools (untouched pages) the plugging itself began.
    assert py_after < py_before / 2
