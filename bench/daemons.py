"""What the benches that start a real daemon share (not a bench itself: `python -m bench` runs
only the `bench_*` modules)."""

from __future__ import annotations

import subprocess
import time

from qkt.control.client import ControlClient
from qkt.errors import QktError
from qkt.paths import StateDir


def connect_when_up(
    state: StateDir, proc: subprocess.Popen[bytes], timeout_s: float = 60.0
) -> ControlClient:
    """A client of the daemon `proc` started on `state`, once its control plane answers;
    raises what the last attempt raised if the daemon exits or `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ControlClient.connect(state, probe=True)
        except QktError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
