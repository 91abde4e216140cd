"""Where a worker's time goes when a candle closes: `python -m bench.bench_burst [CANDLES]`.

The candle-burst latency of `bench_scale` (every worker woken by the same closed candle) is,
on a box with fewer cores than workers, about the CPU each worker spends on one candle times
the workers per core. This splits that CPU into the steps a worker takes for one live candle,
in the order the runner (`qkt/worker/runner.py`) takes them, for the strategy `bench_scale`
deploys (on every candle a buy and a close: two orders, two fills, one transaction):

1. decode the hub's message (`qkt.hub.wire.decode_message`: orjson, Decimal prices);
2. the engine: marks, indicators, rules, the paper fill (`StrategyEngine.on_candle`);
3. the journal's transaction: the fill, the order, the equity row and the engine state,
   committed with SQLite `synchronous=FULL` (WAL): one fsync, which is what makes a fill
   survive a power cut;
4. the log lines of its fill and of the rule that fired, through the worker's own logging
   (`qkt.log.configure`: its file handler, filters and format), the filters counting a minute
   per candle as a live 1m worker's do (so every rule line is written, not counted).

The same commit with `synchronous=OFF` is timed as well, to show the fsync's share. Medians
and 99th percentiles in microseconds per candle, one process, CANDLES candles (default 2,000).
Then the CPU time of all four steps, one candle after another and after 50 ms idle before each:
a worker meets a candle after a minute of sleep, with its code and data out of the CPU's caches.

Then how much memory one candle's work touches (pages the kernel marks referenced, read from
`/proc/PID/smaps` of a forked worker by its parent while it waits): the private part (Python's
objects, the copies of code a worker has written to, malloc's heap, SQLite's cache) is what a
thousand workers each bring back into the CPU's caches at every burst.

Then the disk's part of a burst: a thousand workers each commit their own journal at the same
moment, and the disk takes the flushes (fdatasync, as SQLite's commit) one after another. Timed
with a thread per file, each appending a commit's worth (20 KiB, five WAL frames) and flushing
it at once: when the last flush returns is the floor of the burst's latency no CPU work removes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Final

from qkt.dsl import compile_source
from qkt.engine import EngineConfig, StrategyEngine
from qkt.hub.wire import SequencedCandle, decode_message, encode_candle
from qkt.log import configure
from qkt.market.models import Candle, CandleKey
from qkt.worker.journal import SqliteJournal
from qkt.worker.report import log_events

STRATEGY: Final = """\
STRATEGY burst VERSION 1
SYMBOLS s = SIM:S00USDT EVERY 1m
RULES
    WHEN POSITION.s == 0 THEN BUY s SIZING 0.01
    WHEN POSITION.s > 0 THEN CLOSE s
"""
KEY: Final = CandleKey.parse("SIM:S00USDT:1m")
T0: Final = 1_767_225_600_000
WARM_UP: Final = 200  # candles before the timed ones of run_cpu
Worker = tuple[SqliteJournal, StrategyEngine, logging.Logger]


def candles(count: int) -> list[list[bytes]]:
    """`count` closed 1m candles as the hub publishes them (wire frames)."""
    out = []
    for i in range(count):
        price = Decimal(100) + Decimal(i % 50) / 10
        candle = Candle(KEY, T0 + i * 60_000, price, price + 1, price - 1, price, Decimal(5))
        out.append(encode_candle(SequencedCandle(candle, i + 1, 1)))
    return out


@contextlib.contextmanager
def _worker(synchronous: str = "FULL") -> Iterator[Worker]:
    """One worker's journal, engine and logging, in a scratch folder, as the runner has them."""
    with tempfile.TemporaryDirectory(prefix="qkt-bench-burst-") as tmp:
        journal = SqliteJournal(Path(tmp) / "journal.sqlite")
        journal._db.execute(f"PRAGMA synchronous={synchronous}")  # the one setting compared
        try:
            engine = StrategyEngine(compile_source(STRATEGY), EngineConfig(), journal)
            yield journal, engine, _file_logger(Path(tmp) / "burst.log")
        finally:
            journal.close()


def run(count: int, synchronous: str) -> dict[str, list[float]]:
    """Each step's duration (µs) for every candle, through one engine and one journal."""
    steps: dict[str, list[float]] = {"decode": [], "engine": [], "journal": [], "log": []}
    with _worker(synchronous) as (journal, engine, log):
        clock = time.perf_counter_ns

        def timed(step: str, work: Callable[[], object]) -> object:
            began = clock()
            result = work()
            steps[step].append((clock() - began) / 1000)
            return result

        for frames in candles(count):
            MINUTES.next_candle()
            item = timed("decode", lambda f=frames: decode_message(f))  # type: ignore[misc]
            assert isinstance(item, SequencedCandle)
            candle = item.candle
            began = clock()
            with journal.transaction():
                events = engine.on_candle(candle)
                engine_done = clock()
                journal.record_equity(candle.end_ms, engine.account)
                journal.save_state(engine.export_state())
            steps["engine"].append((engine_done - began) / 1000)
            steps["journal"].append((clock() - engine_done) / 1000)
            timed("log", lambda e=events: log_events(log, e))  # type: ignore[misc]
    return steps


def run_cpu(count: int, pause_s: float) -> list[float]:
    """This thread's CPU time (µs) for each of `count` candles, all four steps, one after
    another or after a pause each (WARM_UP candles before them warm the code up, untimed)."""
    out = []
    with _worker() as (journal, engine, log):
        for n, frames in enumerate(candles(WARM_UP + count)):
            timed = n >= WARM_UP
            if timed and pause_s:
                time.sleep(pause_s)
            began = time.thread_time_ns()
            _one_candle(frames, journal, engine, log)
            if timed:
                out.append((time.thread_time_ns() - began) / 1000)
    return out


class _MinuteClock:
    """The clock the log filters count time by here: a minute per candle, as a live 1m worker
    meets them. With the wall clock, candles back to back would have the filter that writes a
    rule's firing once a minute count most rule lines instead of writing them."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    def next_candle(self) -> None:
        self.now_s += 60.0


MINUTES: Final = _MinuteClock()


def _file_logger(path: Path) -> logging.Logger:
    configure(file=path, clock=MINUTES)  # as a worker sets itself up, on the candles' clock
    return logging.getLogger("qkt.strategy")


def touched_kib(count: int) -> tuple[float, float, float]:
    """Median KiB one candle touches in a forked worker: private (writable) and shared (code)
    mappings, and the private KiB of a round with no candle (what the measuring costs)."""
    to_parent, from_child = os.pipe()
    to_child, from_parent = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: clear the referenced bits, do one candle, let the parent look
        code = 1
        try:
            clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
            with _worker() as (journal, engine, log):
                for n, frames in enumerate(candles(WARM_UP + 2 * count)):
                    measured = n >= WARM_UP
                    if measured:
                        os.write(clear, b"1")
                    if not measured or n % 2:  # every other measured round: no candle
                        _one_candle(frames, journal, engine, log)
                    if measured:
                        os.write(from_child, b"c" if n % 2 else b"-")
                        os.read(to_child, 1)
            code = 0
        finally:
            os._exit(code)
    private: list[float] = []
    shared: list[float] = []
    idle: list[float] = []
    try:
        for _ in range(2 * count):
            kind = os.read(to_parent, 1)
            writable, text = _referenced_kib(pid)
            if kind == b"c":
                private.append(writable)
                shared.append(text)
            else:
                idle.append(writable)
            os.write(from_parent, b"k")
    finally:
        os.waitpid(pid, 0)
        for fd in (to_parent, from_child, to_child, from_parent):
            os.close(fd)
    return statistics.median(private), statistics.median(shared), statistics.median(idle)


def _one_candle(
    frames: list[bytes], journal: SqliteJournal, engine: StrategyEngine, log: logging.Logger
) -> None:
    MINUTES.next_candle()
    item = decode_message(frames)
    assert isinstance(item, SequencedCandle)
    log_events(log, journal.commit_candle(engine, item.candle))


def _referenced_kib(pid: int) -> tuple[float, float]:
    """KiB referenced in `pid`'s writable (private) mappings and in its read-only ones."""
    writable = text = 0.0
    is_writable = False
    with open(f"/proc/{pid}/smaps", "rb") as smaps:
        for line in smaps:
            if line.startswith(b"Referenced:"):
                kib = float(line.split()[1])
                writable, text = (writable + kib, text) if is_writable else (writable, text + kib)
            elif b"-" in line[:20] and not line[:1].isupper():  # a mapping's first line
                is_writable = line.split()[1][1:2] == b"w"
    return writable, text


def concurrent_flushes(count: int, size: int = 20 * 1024) -> list[float]:
    """Milliseconds until each of `count` files, written and flushed by `count` threads at
    once, is on disk (sorted)."""
    with tempfile.TemporaryDirectory(prefix="qkt-flush-") as tmp:
        fds = [
            os.open(f"{tmp}/{i}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            for i in range(count)
        ]
        try:
            for fd in fds:  # each file exists on disk before the burst, as a journal does
                os.write(fd, b"\0" * 4096)
                os.fdatasync(fd)
            go = threading.Event()
            done: list[float] = []
            start = 0.0

            def commit(fd: int) -> None:
                go.wait()
                os.write(fd, b"\1" * size)
                os.fdatasync(fd)
                done.append((time.perf_counter() - start) * 1000)

            threads = [threading.Thread(target=commit, args=(fd,)) for fd in fds]
            for thread in threads:
                thread.start()
            time.sleep(0.5)  # every thread waiting on the event
            start = time.perf_counter()
            go.set()
            for thread in threads:
                thread.join()
        finally:
            for fd in fds:
                os.close(fd)
    return sorted(done)


def _p(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2000
    full = run(count, "FULL")
    off = run(count, "OFF")
    print(f"One worker, {count} candles, a buy and a close on each: microseconds per candle")
    print("| step | median | p99 |")
    print("|---|---:|---:|")
    for step, values in full.items():
        print(f"| {step} | {statistics.median(values):.0f} | {_p(values, 0.99):.0f} |")
    total = [sum(parts) for parts in zip(*full.values(), strict=True)]
    print(f"| **all four** | {statistics.median(total):.0f} | {_p(total, 0.99):.0f} |")
    print(
        f"| journal with synchronous=OFF (no fsync) | {statistics.median(off['journal']):.0f} "
        f"| {_p(off['journal'], 0.99):.0f} |"
    )
    # The same steps, each candle after a pause: what a worker meets, woken once a candle, its
    # code and data no longer in the CPU's caches (CPU time of this thread, so not the sleep).
    for pause_s in (0.0, 0.05):
        cpu = run_cpu(200, pause_s)
        print(
            f"CPU of all four, {'back to back' if not pause_s else f'after {pause_s:g} s idle'}: "
            f"median {statistics.median(cpu):.0f} µs a candle"
        )
    private, shared, idle = touched_kib(40)
    print(
        f"Memory one candle touches: {private:.0f} KiB private, {shared:.0f} KiB of shared code "
        f"(a round with no candle: {idle:.0f} KiB private)"
    )
    for workers in (100, 1000):
        flushed = concurrent_flushes(workers)
        print(
            f"{workers} journals flushed at once: p50 {_p(flushed, 0.5):.0f} ms, "
            f"p99 {_p(flushed, 0.99):.0f} ms, last {flushed[-1]:.0f} ms"
        )


if __name__ == "__main__":
    main()
