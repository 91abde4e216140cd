"""What the fork server saves: memory per worker and deploy latency, fork vs exec spawn.

`python -m bench.bench_daemon [N]` (default 50): for each spawn method, start a daemon on a
simulated market, deploy N strategies one after another (timing each deploy: compile, spawn,
readiness), let them run, then measure every worker's USS and PSS (psutil, /proc/PID/smaps).
USS is what a worker alone costs; PSS also charges it its share of pages shared with others
(the fork server's preloaded imports), so N x PSS is what N workers really take together.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.daemons import connect_when_up
from qkt.paths import StateDir

STRATEGY = """\
STRATEGY s{i} VERSION 1
SYMBOLS btc = SIM:{symbol} EVERY 1m
LET fast = EMA(btc.close, 9), slow = EMA(btc.close, 21)
RULES
    WHEN fast CROSSES ABOVE slow AND POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN fast CROSSES BELOW slow AND POSITION.btc > 0 THEN CLOSE btc
"""
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
MIB = 1024 * 1024


def measure(spawn: str, count: int) -> dict[str, float]:
    """Deploy `count` strategies under a daemon using `spawn`; latency and memory figures."""
    with tempfile.TemporaryDirectory(prefix="qkt-bench-") as tmp:
        root = Path(tmp)
        state = StateDir(root / "s")
        for i in range(count):
            text = STRATEGY.format(i=i, symbol=SYMBOLS[i % len(SYMBOLS)])
            (root / f"s{i}.qkt").write_text(text)
        command = [
            sys.executable,
            "-m",
            "qkt",
            "daemon",
            "--state-dir",
            str(state.root),
            "--spawn",
            spawn,
            "--speed",
            "60",
        ]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = connect_when_up(state, proc)
            latencies = []
            for i in range(count):
                start = time.perf_counter()
                client.deploy(str(root / f"s{i}.qkt"))
                latencies.append(time.perf_counter() - start)
            time.sleep(5)  # let every worker take its first candles
            pids = [entry["pid"] for entry in client.list()]
            infos = [psutil.Process(pid).memory_full_info() for pid in pids]
            daemon_rss = psutil.Process(proc.pid).memory_info().rss
            client.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    uss = [info.uss / MIB for info in infos]
    pss = [info.pss / MIB for info in infos]
    rss = [info.rss / MIB for info in infos]
    return {
        "deploy_median_ms": statistics.median(latencies) * 1000,
        "deploy_p90_ms": sorted(latencies)[int(len(latencies) * 0.9) - 1] * 1000,
        "uss_mib": statistics.mean(uss),
        "pss_mib": statistics.mean(pss),
        "rss_mib": statistics.mean(rss),
        "total_pss_mib": sum(pss),
        "daemon_rss_mib": daemon_rss / MIB,
    }


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    print(f"{count} strategies, Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(
        "spawn  deploy median  deploy p90   USS/worker  PSS/worker  RSS/worker  "
        "sum PSS   daemon RSS"
    )
    for spawn in ("fork", "exec"):
        r = measure(spawn, count)
        print(
            f"{spawn:5}  {r['deploy_median_ms']:10.0f} ms {r['deploy_p90_ms']:8.0f} ms  "
            f"{r['uss_mib']:7.1f} MiB {r['pss_mib']:7.1f} MiB {r['rss_mib']:7.1f} MiB "
            f"{r['total_pss_mib']:7.0f} MiB {r['daemon_rss_mib']:7.1f} MiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
