"""Defect 7 (the crash side): a worker that stops because the disk is full says so.

Before: its crash reason read "exited with code 1 ... asyncio.run(...)". Now the worker exits
with its own code for a full disk and the daemon's reason names it. Real: the state dir is a
small tmpfs that the test fills up while a strategy trades on every candle.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.test_state_dir import needs_root
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, running_daemon

pytestmark = [pytest.mark.slow, needs_root]

FLIPPER = """\
STRATEGY flipper VERSION 1
SYMBOLS s = SIM:BTCUSDT EVERY 1m
RULES
    WHEN POSITION.s == 0 THEN BUY s SIZING 0.01
    WHEN POSITION.s > 0 THEN CLOSE s
"""


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "16m") -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Write to `folder` until the disk refuses (at once, if the strategy's own journal and log
    filled it first: on a loaded box it may trade for a while before this runs)."""
    chunk = b"\0" * 65536
    try:
        # Unbuffered: closing must not flush a buffer the full disk refused a moment ago.
        f = open(folder / "filler", "wb", buffering=0)  # closed by the `with` below
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        return
    with f:
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
                os.fsync(f.fileno())


def test_a_worker_stopped_by_a_full_disk_says_so(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        source = tmp_path / "flipper.qkt"
        source.write_text(FLIPPER)
        with running_daemon(disk / "s", "--speed", "600", worker=REAL_WORKER) as daemon:
            assert daemon.cli("deploy", str(source)).returncode == 0
            wait_until(lambda: daemon.entries()["flipper"]["trades"], 60, what="a first fill")
            fill(disk)

            def reason() -> str:
                return str(daemon.entries()["flipper"].get("error") or "")

            wait_until(lambda: "no space left on device" in reason(), 60, what="the reason")
            assert "exited with code 1" not in reason()
            (disk / "filler").unlink(missing_ok=True)
