"""`make run` for real: the command line of its recipe, polled until the examples trade."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from pathlib import Path

from qkt.dsl import compile_file
from qkt.paths import StateDir
from tests.helpers import REPO_ROOT, pid_alive, wait_until
from tests.supervisor.daemons import child_env, qkt

EXAMPLES = sorted(p.stem for p in (REPO_ROOT / "examples" / "strategies").glob("*.qkt"))


def run_recipe() -> list[str]:
    """What `make run` executes (`make -n` prints it without running it)."""
    # Under `make test` the outer make's variables would make this one chatty (make[1]: ...).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "run"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    printed = result.stdout.strip().splitlines()
    command = shlex.split(printed[-1])
    assert command[0].endswith("qkt") and command[1] == "daemon"
    # The demo's state stays under the checkout, never in the user's real state dir.
    where = Path(command[command.index("--state-dir") + 1])
    assert where == REPO_ROOT / "state"
    return command


def with_state(command: list[str], root: Path) -> list[str]:
    """The recipe with its `--state-dir` pointed at `root` (a test's own folder)."""
    changed = list(command)
    changed[changed.index("--state-dir") + 1] = str(root)
    return changed


def test_the_examples_are_three_or_four_sim_strategies_two_sharing_a_key() -> None:
    assert 3 <= len(EXAMPLES) <= 4
    keys = []
    for name in EXAMPLES:
        program = compile_file(REPO_ROOT / "examples" / "strategies" / f"{name}.qkt")
        assert {key.broker for key in program.keys} == {"SIM"}
        keys.extend(program.keys)
    assert len(keys) > len(set(keys))  # two of them share a key: one hub stream serves both


def test_make_run_trades_within_two_minutes_and_ctrl_c_is_clean(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    command = with_state(run_recipe(), state.root)
    # A terminal's Ctrl-C goes to the whole foreground group: give the daemon its own, signal it.
    with subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=child_env(QKT_STATE_DIR=str(state.root)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as daemon:
        pids: set[int] = set()
        try:

            def trading() -> bool:
                result = qkt("list", "--json", "--state-dir", str(state.root))
                entries = json.loads(result.stdout) if result.returncode == 0 else []
                pids.update(e["pid"] for e in entries if e["pid"])
                return sorted(e["name"] for e in entries) == EXAMPLES and all(
                    e["state"] == "running" and e["trades"] for e in entries
                )

            wait_until(trading, timeout=120, interval=1.0, what="every example to trade")
            os.killpg(daemon.pid, signal.SIGINT)
            assert daemon.wait(timeout=60) == 0
            assert daemon.stdout is not None
            output = daemon.stdout.read()
        finally:
            if daemon.poll() is None:
                os.killpg(daemon.pid, signal.SIGKILL)
            for pid in pids:
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert "shutting down (SIGINT)" in output and "daemon stopped" in output
    assert not state.control_port.exists()
