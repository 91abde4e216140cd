"""One strategy in one process: candles in, engine, journal, status server.

`run_worker(spec)` is the entry point (`python -m qkt.worker SPEC_JSON`, or a fork server's
child); `WorkerRunner` is the same worker inside a host's event loop (`qkt run`). Importing this
package starts nothing: no threads, loops or sockets exist before `run_worker` is called.
"""

from __future__ import annotations

from qkt.worker.entry import EXIT_ALREADY_RUNNING, EXIT_BAD_SPEC, EXIT_FAILED, EXIT_OK, run_worker
from qkt.worker.spec import SPEC_VERSION, SpecError, WorkerSpec

__all__ = [
    "EXIT_ALREADY_RUNNING",
    "EXIT_BAD_SPEC",
    "EXIT_FAILED",
    "EXIT_OK",
    "SPEC_VERSION",
    "SpecError",
    "WorkerSpec",
    "run_worker",
]
