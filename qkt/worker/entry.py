"""`run_worker(spec) -> exit code`: a worker process from its first line to its last.

Called in a fresh process: by `python -m qkt.worker SPEC_JSON`, or by the daemon's fork server in
a freshly forked child. Nothing here runs at import (no threads, loops, sockets or ZeroMQ
contexts before the fork); everything starts inside the call. The worker writes only its own log
file; whatever goes wrong is logged there and becomes a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import sqlite3
import sys
from typing import Final

from qkt import __version__
from qkt.dsl import CompileError, Program, compile_bytes
from qkt.errors import QktError
from qkt.heapholes import plug_heap_holes
from qkt.log import configure
from qkt.money import to_str
from qkt.osproc import set_parent_death_signal
from qkt.worker.beatfigures import HeartbeatFigures
from qkt.worker.codepack import HotCode, code_of, pack_code
from qkt.worker.exitcodes import (
    EXIT_ALREADY_RUNNING,
    EXIT_FAILED,
    EXIT_NO_SPACE,
    EXIT_OK,
)
from qkt.worker.heartbeat import HeartbeatWriter, heartbeat_file
from qkt.worker.lifeline import Lifeline
from qkt.worker.lock import AlreadyRunningError
from qkt.worker.prebuilt import prebuild_status_app
from qkt.worker.rehearsal import rehearse
from qkt.worker.runner import RunSummary, WorkerRunner
from qkt.worker.spec import WorkerSpec

log = logging.getLogger("qkt.worker")
# What a live worker runs that the rehearsal (no hub, no parent, no signals) does not: its
# code is packed with the rehearsed code all the same (`prepare_fork`).
LIVE_ONLY: Final = (
    "qkt.hub.client",
    "qkt.hub.reader",
    "qkt.hub.requester",
    "qkt.worker.lifeline",
    "qkt.worker.entry",
    "zmq.sugar.socket",
    "zmq.sugar.context",
    "zmq.sugar.attrsettr",
    "zmq._future",
    "zmq.asyncio",
)


def run_worker(spec: WorkerSpec) -> int:
    """Run the strategy `spec` names until stopped; the process exit code."""
    configure(file=spec.log_file)
    log.info(
        "worker %s starting: qkt %s, pid %d, file %s (source sha256 %s)",
        spec.name,
        __version__,
        os.getpid(),
        spec.file,
        spec.source_hash[:12],
    )
    try:
        if spec.parent_pid is not None and set_parent_death_signal(parent_pid=spec.parent_pid):
            log.info("exits when parent pid %d dies (PR_SET_PDEATHSIG)", spec.parent_pid)
        # The source the daemon compiled at deploy, not the file as it is now (compile once).
        program = compile_bytes(spec.source.encode("utf-8", "surrogateescape"), spec.file)
        if spec.sim:
            program = program.with_broker("SIM")
        summary = asyncio.run(_run(spec, program))
    except CompileError as error:
        log.error("%s does not compile:\n%s", spec.file, error.render())
        return EXIT_FAILED
    except AlreadyRunningError as error:
        log.error("not started: %s", error.message)
        return EXIT_ALREADY_RUNNING
    except QktError as error:
        log.error("worker failed: %s", error.message)
        return EXIT_FAILED
    except Exception as error:
        if _disk_full(error):
            # Named, so the daemon's crash reason says it instead of "exited with code 1".
            log.error("worker stopped: no space left on device (%s)", error)
            return EXIT_NO_SPACE
        log.exception("worker crashed")
        return EXIT_FAILED
    log.info(
        "worker %s stopped (%s): %d trades, realized %s, equity %s",
        spec.name,
        summary.reason,
        summary.trades,
        to_str(summary.realized),
        to_str(summary.equity),
    )
    return EXIT_OK


async def _run(spec: WorkerSpec, program: Program) -> RunSummary:
    # Under a daemon (a parent to watch), beat for its watchdog.
    heartbeat = None
    if spec.parent_pid is not None:
        heartbeat = HeartbeatWriter(heartbeat_file(spec.state_dir, spec.name))
    lifeline = Lifeline(spec.parent_pid, heartbeat=heartbeat)
    runner = WorkerRunner(spec, program, lifeline)
    lifeline.report(
        runner.trades_so_far,
        runner.halt_changes,
        HeartbeatFigures(runner.engine, runner.changes_so_far),
    )
    lifeline.install()
    try:
        return await runner.run()
    finally:
        await lifeline.aclose()


def prepare_fork() -> None:
    """What the fork server runs once, before its first fork: what every worker would otherwise
    import, build and first run after the fork, done once in memory all of them share; then the
    code a worker runs packed together (`codepack`), and rehearsed again to warm the copies."""
    prebuild_status_app()
    with HotCode() as hot:
        rehearse()
    live = [sys.modules[name] for name in LIVE_ONLY if name in sys.modules]
    gc.collect()
    plug_heap_holes()  # the copies go to fresh memory side by side, not into scattered holes
    pack_code(hot.codes | code_of(*live))
    rehearse()


def _disk_full(error: BaseException) -> bool:
    """The disk (or quota) is full: an OSError saying so, or SQLite's SQLITE_FULL."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error)
