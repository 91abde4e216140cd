"""What the rest of the box did while a bench measured a burst: the hypervisor's steal time,
pages faulted back in, and the CPU of every process outside the bench's (kernel threads too).

On a VM the same burst of a thousand workers can take half as long again from one minute to
the next; these say whether the box had its cores to itself meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import psutil


def vmstat() -> dict[str, int]:
    """The kernel's counters of pages read back in (major faults, evicted file pages faulted
    again): a box that reclaims idle memory behind the workers' backs (DAMON's pageout on a
    VM, say) makes a burst fault its code back in, which shows as CPU and latency."""
    try:
        lines = Path("/proc/vmstat").read_text().splitlines()
    except OSError:
        return {}
    wanted = ("pgmajfault", "workingset_refault_file")
    return {k: int(v) for k, v in (line.split() for line in lines) if k in wanted}


def stolen_s() -> float:
    """CPU seconds the hypervisor has taken from this box's vCPUs so far (steal time: a vCPU
    wanted to run and the host ran something else); 0 where the kernel does not report it."""
    return float(getattr(psutil.cpu_times(), "steal", 0.0))


# A process by its pid and start time (a pid can be reused), with its name and CPU seconds.
Readings = dict[tuple[int, float], tuple[str, float]]


def cpu_by_process(exclude: set[int]) -> Readings:
    """CPU seconds so far of each process on the box (kernel threads included) but `exclude`."""
    found: Readings = {}
    for process in psutil.process_iter(["name", "cpu_times", "create_time"]):
        times, started = process.info["cpu_times"], process.info["create_time"]
        if process.pid not in exclude and times is not None and started is not None:
            name = process.info["name"] or "?"
            found[(process.pid, started)] = (name, times.user + times.system)
    return found


def busiest(before: Readings, after: Readings, seconds: float) -> list[tuple[str, float]]:
    """Cores each kind of process used between the two readings, busiest first: processes named
    alike are summed (`kworker/0:1` and `kworker/1:2` are `kworker`); a kernel worker is named by
    the work queue it last ran when read (`kworker/u8:0-ext4-rsv-conversion` is
    `kworker:ext4-rsv-conversion`), which says roughly what kind of kernel work it was.

    A process is matched by pid and start time, not by name: a kernel worker's name changes
    with its work queue, and matched by name a renamed one counted all the CPU it had used since
    the box booted. A process missing from `before` started in between: all its CPU counts."""
    cores: dict[str, float] = defaultdict(float)
    for key, (name, spent) in after.items():
        earlier = before[key][1] if key in before else 0.0  # absent: started in between
        cores[_kind(name)] += (spent - earlier) / seconds
    return sorted(cores.items(), key=lambda item: -item[1])


def _kind(name: str) -> str:
    kind, _, rest = name.partition("/")
    _, dash, queue = rest.partition("-")
    return f"{kind}:{queue}" if kind == "kworker" and dash else kind
