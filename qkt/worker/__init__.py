"""One strategy in one process: candles in, engine, journal, status server.

`run_worker(spec)` is the entry point (`python -m qkt.worker SPEC_JSON`, or a fork server's
child); `WorkerRunner` is the same worker inside a host's event loop (`qkt run`). Importing this
package starts nothing: no threads, loops or sockets exist before `run_worker` is called.

The names below load on first use: the CLI reads `qkt.worker.record` (a plain dataclass module)
and must not pay for the engine, FastAPI and pydantic that `entry` pulls in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from qkt.worker.entry import prepare_fork, run_worker
    from qkt.worker.exitcodes import (
        EXIT_ALREADY_RUNNING,
        EXIT_BAD_SPEC,
        EXIT_FAILED,
        EXIT_NO_SPACE,
        EXIT_OK,
    )
    from qkt.worker.spec import SPEC_VERSION, SpecError, WorkerSpec

__all__ = [
    "EXIT_ALREADY_RUNNING",
    "EXIT_BAD_SPEC",
    "EXIT_FAILED",
    "EXIT_NO_SPACE",
    "EXIT_OK",
    "SPEC_VERSION",
    "SpecError",
    "WorkerSpec",
    "prepare_fork",
    "run_worker",
]

_HOMES: Final = {
    "EXIT_ALREADY_RUNNING": "qkt.worker.exitcodes",
    "EXIT_BAD_SPEC": "qkt.worker.exitcodes",
    "EXIT_FAILED": "qkt.worker.exitcodes",
    "EXIT_NO_SPACE": "qkt.worker.exitcodes",
    "EXIT_OK": "qkt.worker.exitcodes",
    "prepare_fork": "qkt.worker.entry",
    "run_worker": "qkt.worker.entry",
    "SPEC_VERSION": "qkt.worker.spec",
    "SpecError": "qkt.worker.spec",
    "WorkerSpec": "qkt.worker.spec",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qkt.worker' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
