"""bench/box_watch.py: the CPU the box's other processes used between two readings."""

from __future__ import annotations

from bench.box_watch import busiest


def test_a_kernel_worker_renamed_between_readings_counts_only_what_it_used_between() -> None:
    """A kworker's name carries the work queue it last ran: matched by name, the renamed one
    counted all the CPU it had used since boot (120 s here) as used in the window."""
    before = {(40, 1.0): ("kworker/u8:0-ext4-rsv-conversion", 120.0), (7, 1.0): ("kdamond.0", 9.0)}
    after = {(40, 1.0): ("kworker/u8:0-kvfree_rcu_reclaim", 120.5), (7, 1.0): ("kdamond.0", 10.0)}
    assert busiest(before, after, 10.0) == [
        ("kdamond.0", 0.1),
        ("kworker:kvfree_rcu_reclaim", 0.05),
    ]


def test_a_process_started_between_readings_counts_all_its_cpu_and_a_reused_pid_is_new() -> None:
    before = {(40, 1.0): ("python", 50.0)}
    after = {(40, 2.0): ("python", 0.3), (41, 2.0): ("kworker/0:1", 0.2)}
    assert busiest(before, after, 1.0) == [("python", 0.3), ("kworker", 0.2)]
