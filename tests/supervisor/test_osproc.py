"""qkt.osproc: /proc stat parsing, the one-integer files, the parent-death signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from qkt.osproc import parent_pid_of, proc_stat, read_int_file, running
from tests.helpers import wait_until


def test_proc_stat_of_this_process_and_of_a_zombie() -> None:
    stat = proc_stat(os.getpid())
    assert stat is not None and stat.ppid == os.getppid() and stat.state in "RS"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not reaped yet: a zombie exists in /proc, but is not running.
    wait_until(lambda: (s := proc_stat(child.pid)) is not None and s.state == "Z", 10)
    assert parent_pid_of(child.pid) == os.getpid() and not running(child.pid)
    child.wait()
    assert proc_stat(child.pid) is None and parent_pid_of(child.pid) is None


def test_read_int_file(tmp_path: Path) -> None:
    path = tmp_path / "x.port"
    assert read_int_file(path) is None
    path.write_text("4242\n")
    assert read_int_file(path) == 4242
    path.write_text("garbage")
    assert read_int_file(path) is None
    assert read_int_file(tmp_path) is None  # a folder


def test_the_parent_death_signal_reaches_a_child_whose_parent_dies(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    grandchild = (
        "import os, signal, time, sys\n"
        "from qkt.osproc import set_parent_death_signal\n"
        "assert set_parent_death_signal(signal.SIGKILL, parent_pid=os.getppid())\n"
        f"open({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    # The middle process starts the grandchild and waits; killing it must take the grandchild.
    middle = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])",
        ]
    )
    pid = wait_until(lambda: read_int_file(marker), 30, what="the grandchild")
    middle.send_signal(signal.SIGKILL)
    middle.wait()
    wait_until(lambda: not running(pid), 10, what="the grandchild to die with its parent")
