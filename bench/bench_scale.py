"""Issue 17: N strategies on one box, each figure beside a baseline measured in the same run.

`python -m bench.bench_scale [N]` (or `QKT_BENCH_SCALE=N make bench`; default 1,000, fewer if
the box has not the memory for them: ~14 MiB each is asked for). One daemon (fork server, SIM
market at speed 1, 1m candles on 20 symbols, several strategies per key) gets N strategies from
`--load-dir`, each buying and closing on every candle (a market order fills before the next
rule runs: two fills, journaled in the candle's one transaction), then:

- memory: mean PSS and USS per worker, just deployed and again after a candle and a `/status`
  read (`qkt status`), against a bare fastapi + uvicorn + pyzmq process's RSS;
- idle CPU: CPU time of the daemon, the fork server and every worker over a window between two
  candles, in cores; and again with a Prometheus scraping the daemon's `/metrics` every second;
- candle-burst latency: every worker's first FILL line (written after the candle's journal
  commit) minus the moment the hub published the minute's candles (by the hub's own clock,
  `GET /hub`; how long after the minute that was is shown too),
  p50/p99 over all N workers on the same minute, against a raw pyzmq PUB->SUB one-way hop over
  ipc; and the p99 of each of the
  next minutes' bursts too (QKT_BENCH_BURSTS minutes in all, default 4): one burst swings with
  what else the box does at that second; with the CPU it cost per worker, the share of
  the box's CPU the hypervisor took meanwhile (steal time: on a shared VM the same burst can
  cost several times the CPU from one run to the next) and what the box's other processes
  used (kernel threads such as the memory monitor `kdamond`: `bench/box_watch.py`);
- `qkt list` wall time against `python -c pass` (median of 5 each);
- daemon restart: SIGTERM, start again, time until all N are `running` again, and the slowest
  `GET /list` answered meanwhile; then the p99 of the first burst once all are back, for most
  workers their first live candle since the restart (a fresh fork's first candle costs more:
  `qkt/worker/prewarm.py`).
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psutil

from bench.box_watch import busiest, cpu_by_process, stolen_s, vmstat
from bench.daemons import connect_when_up
from bench.publish_watch import ASKED_BY_S, PublishWatch
from bench.scale_baselines import bare_process_rss, pyzmq_hop_ms, timed_runs
from qkt.control.client import ControlClient
from qkt.errors import QktError
from qkt.paths import StateDir

STRATEGY = """\
STRATEGY s{i} VERSION 1
SYMBOLS s = SIM:{symbol} EVERY 1m
RULES
    WHEN POSITION.s == 0 THEN BUY s SIZING 0.01
    WHEN POSITION.s > 0 THEN CLOSE s
"""
SYMBOLS = tuple(f"S{i:02d}USDT" for i in range(20))
MIB = 1024 * 1024
# Asked of the box per strategy: a worker's ~9 MiB PSS, the daemon's share and headroom.
WANT_PER_WORKER = 14 * MIB
# Minutes of candle bursts observed (the first one measured in detail), QKT_BENCH_BURSTS.
BURSTS = int(os.environ.get("QKT_BENCH_BURSTS", "4"))
FILL_TIME = re.compile(r"^(\S+Z) .*qkt\.strategy: FILL")


def _count() -> int:
    """N: the argument, else QKT_BENCH_SCALE, else 1,000; capped by the memory available."""
    asked = int(sys.argv[1]) if __name__ == "__main__" and len(sys.argv) > 1 else 0
    asked = asked or int(os.environ.get("QKT_BENCH_SCALE", "1000"))
    room = int(psutil.virtual_memory().available * 0.7 // WANT_PER_WORKER)
    if room < asked:
        print(f"only memory for {room} strategies here (asked {asked}): running {room}")
    return max(1, min(asked, room))


def _daemon(state: StateDir, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "qkt", "daemon", "--state-dir", str(state.root), *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_running(client: ControlClient, count: int, timeout_s: float) -> tuple[float, float]:
    """Seconds until `count` strategies run, and the slowest `GET /list` meanwhile."""
    start = time.monotonic()
    slowest = 0.0
    while time.monotonic() - start < timeout_s:
        asked = time.monotonic()
        try:
            entries = client.list()
        except QktError:
            entries = []
        slowest = max(slowest, time.monotonic() - asked)
        if len(entries) >= count and all(e.state == "running" for e in entries):
            return time.monotonic() - start, slowest
        time.sleep(1.0)
    raise RuntimeError(f"not all {count} strategies were running after {timeout_s:g} s")


def _cpu_s(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _tree(pid: int) -> list[psutil.Process]:
    daemon = psutil.Process(pid)
    return [daemon, *daemon.children(recursive=True)]


def _idle_cores(pid: int, scrape: Callable[[], object] | None = None) -> tuple[float, float]:
    """Cores used by the whole tree, and by the daemon alone, between two candles (from 5 s to
    50 s past a minute); with `scrape` called once a second meanwhile (a Prometheus)."""
    _sleep_to_second(5)
    tree = _tree(pid)
    before, daemon_before, start = _cpu_s(tree), _cpu_s(tree[:1]), time.monotonic()
    while scrape is not None and time.time() % 60 < 49:
        scrape()
        time.sleep(1 - time.time() % 1)
    _sleep_to_second(50)
    elapsed = time.monotonic() - start
    return (_cpu_s(tree) - before) / elapsed, (_cpu_s(tree[:1]) - daemon_before) / elapsed


def _sleep_to_second(second: int) -> None:
    now = time.time()
    time.sleep((second - now % 60) % 60)


def _fill_times(log: Path) -> Iterator[float]:
    """The wall times (epoch s) of a worker's FILL lines, in the order written."""
    for line in log.read_text(errors="replace").splitlines():
        match = FILL_TIME.match(line)
        if match is not None:
            yield datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp()


def _fills(logs: Path, first: int, last: int) -> dict[int, list[float]]:
    """For each minute from `first` to `last` (epoch s): each worker's first FILL after the
    candle closing then (wall time, epoch s)."""
    found: dict[int, list[float]] = {m: [] for m in range(first, last + 1, 60)}
    for log in logs.glob("s*.log"):
        seen: set[int] = set()
        for at in _fill_times(log):
            minute = int(at // 60) * 60
            if minute in found and minute not in seen:
                seen.add(minute)
                found[minute].append(at)
    return found


def _first_fills(logs: Path, since: float) -> list[float]:
    """Each worker's first FILL at or after `since` (wall time, epoch s)."""
    firsts = (
        next((at for at in _fill_times(log) if at >= since), None) for log in logs.glob("s*.log")
    )
    return [at for at in firsts if at is not None]


def _since_sent(fills: list[float], minute: int, sent: dict[str, float]) -> list[float]:
    """Each fill in ms after the hub sent the minute's candles (it sends every key's candle of a
    minute in one go: the first is the time). From the minute itself if the watch saw none (the
    feed's part is then counted too)."""
    start = min(sent.values(), default=float(minute))
    return [(at - start) * 1000 for at in fills]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def run(count: int) -> None:
    bare_rss = bare_process_rss()
    hop = pyzmq_hop_ms()
    print(f"{count} strategies, {os.cpu_count()} cores, ulimit -n {_nofile()}")
    with tempfile.TemporaryDirectory(prefix="qkt-scale-") as tmp:
        root = Path(tmp)
        load = root / "load"
        load.mkdir()
        for i in range(count):
            symbol = SYMBOLS[i % len(SYMBOLS)]
            (load / f"s{i}.qkt").write_text(STRATEGY.format(i=i, symbol=symbol))
        state = StateDir(root / "s")
        proc = _daemon(state, "--load-dir", str(load))
        watch = PublishWatch(state)
        try:
            client = connect_when_up(state, proc)
            deploy_s, _ = _wait_running(client, count, 1800)
            print(f"deployed {count} in {deploy_s:.0f} s")
            pids = [e.pid for e in client.list() if e.pid]
            deployed = _memory(pids)
            idle, idle_daemon = _idle_cores(proc.pid)
            watch.start()  # from here to the last burst: when the hub sent each candle
            _sleep_to_second(58)
            minute = int(time.time() // 60 + 1) * 60
            tree = _tree(proc.pid)
            cpu_before, window_start = _cpu_s(tree), time.monotonic()
            daemon_before, faults_before = _cpu_s(tree[:1]), vmstat()
            stolen_before = stolen_s()
            bench_pids = {p.pid for p in tree} | {os.getpid()}  # the others are the rest
            others_before = cpu_by_process(bench_pids)
            time.sleep(minute + 20 - time.time())
            window = time.monotonic() - window_start
            burst_cpu_ms = (_cpu_s(tree) - cpu_before - idle * window) * 1000 / count
            daemon_burst_ms = (_cpu_s(tree[:1]) - daemon_before - idle_daemon * window) * 1000
            faults = {k: v - faults_before.get(k, 0) for k, v in vmstat().items()}
            stolen_share = (stolen_s() - stolen_before) / (window * (os.cpu_count() or 1))
            others = busiest(others_before, cpu_by_process(bench_pids), window)
            # Again after a candle and an answer to the daemon's `/status` (a `qkt status`, the
            # alerts' figures): what a worker holds from then on. The daemon asks its workers
            # at a bounded rate (statuses.py: 20 a second), hence the wait.
            client.status_all()
            time.sleep(3 + count / 20)
            settled = _memory(pids)
            restarts = sum(e.restarts for e in client.list())
            pass_s = timed_runs([sys.executable, "-c", "pass"])
            list_s = timed_runs(
                [sys.executable, "-m", "qkt", "list", "--state-dir", str(state.root)]
            )
            client.close()
            # Until the last burst is over and the hub was asked when it sent that candle.
            time.sleep(max(0.0, minute + 60 * (BURSTS - 1) + ASKED_BY_S - time.time()))
            # Every minute's burst since the measured one whose 20 s are over: a single burst
            # swings with what else the box (and the host under it) does at that second.
            last_minute = int((time.time() - 20) // 60) * 60
            fills = _fills(state.logs_dir, minute, last_minute)
            watch.stop()
            # Idle again, with a Prometheus scraping `/metrics` every second meanwhile.
            client = connect_when_up(state, proc)
            scraped, scraped_daemon = _idle_cores(proc.pid, scrape=client.metrics)
            client.close()
            bursts = {m: _since_sent(f, m, watch.published(m)) for m, f in fills.items()}
            burst = bursts[minute]
            sent = [at - minute for at in watch.published(minute).values()]
            restarted_at = time.time()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=300)
            proc = _daemon(state)
            client = connect_when_up(state, proc)
            recover_s, slowest_list = _wait_running(client, count, 1800)
            client.close()
            # The first burst once all are back: for most workers their first live candle
            # since the restart (the copy-on-write faults of a fresh fork: `prewarm`).
            watch = PublishWatch(state)
            watch.start()
            after = int(time.time() // 60 + 1) * 60
            time.sleep(max(0.0, after + ASKED_BY_S - time.time()))
            watch.stop()
            after_burst = _since_sent(
                _fills(state.logs_dir, after, after)[after], after, watch.published(after)
            )
            firsts = sum(
                after <= at < after + 60 for at in _first_fills(state.logs_dir, restarted_at)
            )
        finally:
            watch.stop()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=300)
    bare = bare_rss / MIB
    base = f"bare process RSS {bare:.1f} MiB"
    rows = [
        *((f"{name}, deployed", f"{v:.1f} MiB", base, v / bare) for name, v in deployed),
        *((f"{name}, after a candle", f"{v:.1f} MiB", base, v / bare) for name, v in settled),
        ("idle CPU, all processes", f"{idle:.3f} cores", "target < 0.3 cores", idle),
        ("idle CPU, the daemon alone", f"{idle_daemon:.3f} cores", "", idle_daemon),
        ("idle, /metrics scraped every 1 s", f"{scraped:.3f} cores", "target < 0.3 cores", scraped),
        ("the same, the daemon alone", f"{scraped_daemon:.3f} cores", "", scraped_daemon),
        (
            "the daemon's CPU per scrape",
            f"{(scraped_daemon - idle_daemon) * 1000:.0f} ms",
            "(at one scrape a second)",
            0.0,
        ),
        (
            "hub sent the minute's candles",
            f"{min(sent) * 1000:.0f} ms" if sent else "not seen",
            f"after the minute (the feed's part); last {max(sent, default=0) * 1000:.0f}",
            0.0,
        ),
        (
            f"burst latency p50 ({len(burst)} workers)",
            f"{_percentile(burst, 0.5):.0f} ms",
            f"pyzmq hop p50 {hop[0]:.3f} ms",
            _percentile(burst, 0.5) / hop[0],
        ),
        (
            "burst latency p99",
            f"{_percentile(burst, 0.99):.0f} ms",
            f"pyzmq hop p99 {hop[1]:.3f} ms",
            _percentile(burst, 0.99) / hop[1],
        ),
        (
            "burst p99, each minute",
            ", ".join(f"{_percentile(v, 0.99):.0f}" for v in bursts.values()) + " ms",
            f"workers filled: {', '.join(str(len(v)) for v in bursts.values())}",
            0.0,
        ),
        ("CPU per worker per candle", f"{burst_cpu_ms:.1f} ms", "daemon and hub included", 0.0),
        (
            # Measured as its CPU over the window less its idle rate times the window: the
            # candle's share can be smaller than the idle rate's swing, and read below zero.
            "the daemon's CPU for that candle",
            f"{daemon_burst_ms:.0f} ms" if daemon_burst_ms >= 0 else "~0 ms",
            "" if daemon_burst_ms >= 0 else f"({daemon_burst_ms:.0f}: within its idle's swing)",
            0.0,
        ),
        (
            "CPU stolen by the host, that minute",
            f"{stolen_share * 100:.1f} %",
            "of the box's cores, /proc/stat",
            stolen_share,
        ),
        (
            "other processes, that minute",
            f"{sum(c for _, c in others):.3f} cores",
            ", ".join(f"{name} {c:.3f}" for name, c in others[:3]),
            sum(c for _, c in others),
        ),
        *(
            (f"{name} during the burst", f"{pages}", "pages, the whole box", 0.0)
            for name, pages in faults.items()
        ),
        (
            "qkt list",
            f"{list_s * 1000:.0f} ms",
            f"python -c pass {pass_s * 1000:.0f} ms",
            list_s / pass_s,
        ),
        ("restarts during the run", f"{restarts}", "target 0", float(restarts)),
        ("daemon restart, all running", f"{recover_s:.0f} s", "target <= 180 s", recover_s / 180),
        ("slowest GET /list meanwhile", f"{slowest_list * 1000:.0f} ms", "", slowest_list),
        (
            "first burst after it, p99",
            f"{_percentile(after_burst, 0.99):.0f} ms",
            f"{firsts} of {len(after_burst)} on their first live candle",
            0.0,
        ),
    ]
    print(f"{'measure':34} {'qkt':>14}  {'baseline (same run)':30} ratio")
    for name, ours, base, ratio in rows:
        print(f"{name:34} {ours:>14}  {base:30} {ratio:.2f}", flush=True)


def _memory(pids: list[int]) -> list[tuple[str, float]]:
    """Mean PSS and USS of the workers (MiB): smaps, through psutil."""
    infos = []
    for pid in pids:
        try:
            infos.append(psutil.Process(pid).memory_full_info())
        except psutil.Error:
            pass  # a worker that just restarted: counted by `restarts`
    pss = statistics.mean(i.pss for i in infos) / MIB
    uss = statistics.mean(i.uss for i in infos) / MIB
    return [("PSS per worker", pss), ("USS per worker", uss)]


def _nofile() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    run(_count())


if __name__ == "__main__":
    main()
