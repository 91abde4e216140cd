"""How quickly the CLI answers: each read-only command's wall time against `python -c pass`.

`python -m bench.bench_cli [RUNS]` (default 15): start a daemon with three strategies on the
simulated market, then run each command RUNS times, interleaved with `python -c pass` on the
same interpreter, and print the medians and their ratio (the target is 5x or less: a command
costs about what starting Python costs, as `docker ps` costs about what starting docker does).
"""

from __future__ import annotations

import compileall
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import qkt
from bench.daemons import connect_when_up
from qkt.paths import StateDir

STRATEGY = """\
STRATEGY s{i} VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1m
LET fast = EMA(btc.close, 9), slow = EMA(btc.close, 21)
RULES
    WHEN fast CROSSES ABOVE slow AND POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN fast CROSSES BELOW slow AND POSITION.btc > 0 THEN CLOSE btc
"""
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--version",),
    ("--help",),
    ("list",),
    ("list", "--json"),
    ("status",),
    ("status", "s0"),
    ("logs", "s0", "--lines", "20"),
    ("daemon", "status"),
)


def qkt_command() -> list[str]:
    """The `qkt` script next to this interpreter (what a user runs), else `python -m qkt`."""
    script = Path(sys.executable).with_name("qkt")
    return [str(script)] if script.exists() else [sys.executable, "-m", "qkt"]


def wall(argv: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.decode()[:300]}")
    return elapsed


def compile_like_an_install() -> None:
    """Write qkt's bytecode, as pip does when it installs a package (not an editable one):
    measured without it, a shell with PYTHONDONTWRITEBYTECODE=1 (this box's, many images')
    would compile every qkt module at every command, which no installed qkt does."""
    compileall.compile_dir(Path(qkt.__file__).parent, quiet=1)


def measure(runs: int) -> list[tuple[str, float, float]]:
    """(command, median seconds, ratio to `python -c pass`) for each command."""
    compile_like_an_install()
    tmp = tempfile.mkdtemp(prefix="qkt-bench-cli-")
    root = Path(tmp)
    state = StateDir(root / "s")
    for i in range(3):
        (root / f"s{i}.qkt").write_text(STRATEGY.format(i=i))
    env = {**os.environ, "QKT_STATE_DIR": str(state.root), "NO_COLOR": "1"}
    daemon = [sys.executable, "-m", "qkt", "daemon", "--load-dir", str(root), "--speed", "60"]
    proc = subprocess.Popen(daemon, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = connect_when_up(state, proc)
        deadline = time.monotonic() + 60
        while len([e for e in client.list() if e.state == "running"]) < 3:
            if time.monotonic() > deadline:
                raise RuntimeError("the strategies did not start")
            time.sleep(0.2)
        base = qkt_command()
        baseline: list[float] = []
        timings: dict[tuple[str, ...], list[float]] = {c: [] for c in COMMANDS}
        for _ in range(runs):  # interleaved: a busy moment hits the baseline too
            baseline.append(wall([sys.executable, "-c", "pass"], env))
            for command in COMMANDS:
                timings[command].append(wall([*base, *command], env))
        python = statistics.median(baseline)
        rows = [("python -c pass", python, 1.0)]
        for command, found in timings.items():
            median = statistics.median(found)
            rows.append(("qkt " + " ".join(command), median, median / python))
        return rows
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 15
    rows = measure(runs)
    print(f"CLI wall time, median of {runs} runs (3 strategies deployed)")
    print("| command | median | x python -c pass |")
    print("|---|---:|---:|")
    for command, seconds, ratio in rows:
        print(f"| `{command}` | {seconds * 1000:.0f} ms | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
