"""`rehearse()`: one worker's life played once in the fork server, before its first fork.

A forked worker shares the fork server's memory page by page until either side writes to a page,
and Python writes to much of what it merely runs: Python 3.11 rewrites a function's bytecode in
place over its first calls (the specializing interpreter), and libraries fill caches on first
use (compiled regexes, typing and pydantic caches, uvicorn's protocol imports, SQLite's). Left
to the workers, each of them would make those writes, so each would hold its own copy of every
page they touch. Rehearsed here, the writes land once in the fork server's pages, which every
worker then shares.

The rehearsal is a real worker run with what a fork server must not keep left out: no hub (the
candles are made up, though they go through the wire format), no signal handlers, no parent
watch. It serves the status app built for the workers on a loopback port and asks it what the
daemon asks a worker (`/health`, `/status`), then stops. Nothing of it remains afterwards: its
loop, server and sockets are closed, its files removed, and the app is handed back unbound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import psutil

from qkt.dsl import compile_bytes
from qkt.hub import SequencedCandle
from qkt.hub.wire import decode_message, encode_candle
from qkt.log import configure
from qkt.worker.beatfigures import HeartbeatFigures
from qkt.worker.heartbeat import HeartbeatWriter
from qkt.worker.lifeline import Lifeline, StopReason
from qkt.worker.prebuilt import prebuild_status_app, return_status_app
from qkt.worker.prewarm import made_up_candles
from qkt.worker.runner import WorkerRunner
from qkt.worker.runview import RunState
from qkt.worker.spec import WorkerSpec

# The features most strategies use: indicators, a crossing, a position guard, entries and exits.
SOURCE: Final = """\
STRATEGY rehearsal VERSION 1
SYMBOLS s = SIM:REHEARSALUSDT EVERY 1m
LET fast = EMA(s.close, 3),
    slow = EMA(s.close, 5)
RULES
    WHEN fast CROSSES ABOVE slow AND POSITION.s == 0 THEN BUY s SIZING 0.01
    WHEN fast CROSSES BELOW slow AND POSITION.s > 0 THEN CLOSE s
    WHEN POSITION.s == 0 THEN BUY s SIZING 0.01
    WHEN POSITION.s > 0 THEN CLOSE s
"""
TOKEN: Final = "rehearsal"
CANDLES: Final = 12  # enough to warm the indicators and run every rule a few times


@dataclass(frozen=True, slots=True)
class Rehearsal:
    """What the rehearsal did: fills journaled, and the HTTP status of each route asked."""

    trades: int
    answers: dict[str, int]


def rehearse() -> Rehearsal:
    """Run the rehearsal to its end in a scratch folder (removed afterwards)."""
    folder = Path(tempfile.mkdtemp(prefix="qkt-rehearsal-"))
    try:
        token = folder / "control.token"
        token.write_text(TOKEN)
        spec = WorkerSpec(
            name="rehearsal",
            file=str(folder / "rehearsal.qkt"),
            source=SOURCE,
            state_dir=str(folder / "state"),
            hub_pub="ipc:///nonexistent/pub",  # never connected: the rehearsal has no hub
            hub_snapshot="ipc:///nonexistent/snapshot",
            sim=True,
            token_file=str(token),
        )
        configure(file=spec.log_file)  # the worker's log lines, formatted and written
        try:
            return asyncio.run(_run(spec))
        finally:
            configure()  # no handler left open on the scratch folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _run(spec: WorkerSpec) -> Rehearsal:
    program = compile_bytes(spec.source.encode(), spec.file).with_broker("SIM")
    heartbeat = HeartbeatWriter(Path(spec.state_dir) / "heartbeat")
    app = prebuild_status_app()
    lifeline = Lifeline(None, heartbeat=heartbeat)
    runner = _RehearsalRunner(spec, program, lifeline)
    lifeline.report(
        runner.trades_so_far,
        runner.halt_changes,
        HeartbeatFigures(runner.engine, runner.changes_so_far),
    )
    try:
        summary = await runner.run()
    finally:
        heartbeat.close()
        return_status_app(app)
    return Rehearsal(summary.trades, runner.answers)


class _RehearsalRunner(WorkerRunner):
    """A worker whose candles are made up here instead of read from a hub."""

    answers: dict[str, int]

    async def _trade(self, stack: contextlib.AsyncExitStack) -> None:
        self.state = RunState.RUNNING
        for item in made_up_candles(self.program.keys, CANDLES):
            decoded = decode_message(encode_candle(item))  # the wire format, both ways
            assert isinstance(decoded, SequencedCandle)
            self._take_candle(replace(decoded, snapshot=item.snapshot))  # (not on the wire)
        self.lifeline.beat()
        psutil.Process(os.getpid())  # what the lifeline makes of its parent
        with contextlib.suppress(TimeoutError):  # the HTTP server's idle tick: a timeout
            await asyncio.wait_for(asyncio.Event().wait(), 0.001)
        self.answers = {}
        if self.port is not None:
            for path in ("/health", "/status"):
                self.answers[path] = await _get(self.spec.bind, self.port, path)
        self.lifeline.request_stop(StopReason.REQUEST, detail="rehearsal over")
        await asyncio.Event().wait()  # cancelled by the stop


async def _get(host: str, port: int, path: str) -> int:
    """One HTTP/1.1 GET with the token, the way the daemon asks; the answer's status code."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        answer = await reader.read()  # to its end: the whole answer is made and sent
        return int(answer.split(b" ", 2)[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
