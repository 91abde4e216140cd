"""A forked worker's first candles with and without `prewarm`: `python -m bench.bench_first_candle`.

A worker forked from the fork server shares its memory until it writes to it, and the first
candle it handles writes to a few hundred shared pages (reference counts of the code and objects
it runs), each a page fault and a copy. After a deploy or a daemon restart every worker meets
that first candle in the same burst. `qkt/worker/prewarm.py` runs the candle path once on a
scratch engine and journal at the worker's start instead; this measures both ways.

One process prepares as the fork server does (`prepare_fork`: imports, the rehearsal, the code
packed), then forks CHILDREN workers (default 20), alternately without and with `prewarm`. Each
opens its journal and builds its engine as the runner does (at its start, before any candle),
then handles CANDLES candles of `bench_burst`'s strategy (a buy and a close each) with 50 ms idle
before each, and reports each candle's CPU time and minor page faults. Medians over the workers.
The preparation runs in a process of its own (it packs the code of the process it runs in).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from bench.bench_burst import STRATEGY, candles

CHILDREN: Final = int(os.environ.get("QKT_BENCH_FIRST_CHILDREN", "20"))
CANDLES: Final = 4
Sample = tuple[int, int]  # CPU µs, minor faults


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _worker(warm: bool) -> list[Sample]:
    """In a forked child: the runner's start, then CANDLES live candles (prewarm's cost first)."""
    from qkt.dsl import compile_source
    from qkt.engine import EngineConfig, StrategyEngine
    from qkt.hub.wire import SequencedCandle, decode_message
    from qkt.worker.journal import SqliteJournal
    from qkt.worker.prewarm import prewarm

    folder = Path(tempfile.mkdtemp(prefix="qkt-bench-first-"))
    program = compile_source(STRATEGY)
    journal = SqliteJournal(folder / "journal.sqlite")
    engine = StrategyEngine(program, EngineConfig(), journal)
    samples: list[Sample] = []
    began, faults = time.thread_time_ns(), _faults()
    if warm:
        prewarm(program, EngineConfig(), folder)
    samples.append(((time.thread_time_ns() - began) // 1000, _faults() - faults))
    for frames in candles(CANDLES):
        time.sleep(0.05)
        began, faults = time.thread_time_ns(), _faults()
        item = decode_message(frames)
        assert isinstance(item, SequencedCandle)
        journal.commit_candle(engine, item.candle)
        samples.append(((time.thread_time_ns() - began) // 1000, _faults() - faults))
    journal.close()
    shutil.rmtree(folder)
    return samples


def _forked(warm: bool) -> list[Sample]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            text = " ".join(f"{cpu}:{faults}" for cpu, faults in _worker(warm))
            os.write(write, text.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return [(int(a), int(b)) for a, b in (pair.split(":") for pair in text.split())]


def measure() -> None:
    """In the process of its own: prepare as the fork server does, then fork the workers."""
    from qkt.worker.entry import prepare_fork

    prepare_fork()
    runs: dict[bool, list[list[Sample]]] = {False: [], True: []}
    for i in range(CHILDREN):
        warm = i % 2 == 1
        runs[warm].append(_forked(warm))
    print(f"{CHILDREN} forked workers, CPU µs / minor page faults, medians")
    print(f"{'':22} {'without prewarm':>18} {'with prewarm':>18}")
    for step in range(CANDLES + 1):
        name = "prewarm at the start" if step == 0 else f"live candle {step}"
        cells = []
        for warm in (False, True):
            cpu = statistics.median(run[step][0] for run in runs[warm])
            faults = statistics.median(run[step][1] for run in runs[warm])
            cells.append(f"{cpu:>8.0f} / {faults:>5.0f}")
        print(f"{name:22} {cells[0]:>18} {cells[1]:>18}")


def main() -> None:
    subprocess.run([sys.executable, "-m", "bench.bench_first_candle", "--here"], check=True)


if __name__ == "__main__":
    if "--here" in sys.argv:
        measure()
    else:
        main()
