"""Real daemons for tests: `running_daemon(...)` starts `qkt daemon` as a subprocess.

The daemon runs the fake worker (tests/supervisor/fake_worker.py) unless told otherwise; the
context manager stops it with SIGTERM (SIGKILL if it must) and kills any worker left behind, so
that no test leaks a process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import requests

from qkt.control.client import ControlClient
from qkt.paths import StateDir
from tests.helpers import PYTHON, REPO_ROOT, pid_alive, wait_until

FAKE_WORKER: Final = "tests.supervisor.fake_worker"
REAL_WORKER: Final = "qkt.worker"


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a qkt subprocess: this test's (its QKT_STATE_DIR), the repo on the
    path (for the fake worker), unbuffered output."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", **extra}


SIMPLE: Final = """\
STRATEGY {name} VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN btc.close > 0 AND POSITION.btc == 0 THEN BUY btc SIZING 0.01
"""


def strategy(folder: Path, name: str, *directives: str, symbol: str = "BTCUSDT") -> Path:
    """Write a small valid SIM strategy `<folder>/<name>.qkt` with `-- fake:` directives."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(f"-- fake: {d}\n" for d in directives)
    text += SIMPLE.format(name=name.replace("-", "_")).replace("BTCUSDT", symbol)
    path = folder / f"{name}.qkt"
    path.write_text(text)
    return path


def qkt(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess."""
    return subprocess.run(
        [PYTHON, "-m", "qkt", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


@dataclass
class RunningDaemon:
    """A daemon subprocess and its state dir."""

    proc: subprocess.Popen[str]
    state: StateDir
    seen_pids: set[int] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        # Drain the daemon's output as it comes: a full pipe would block the daemon.
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def root(self) -> str:
        return str(self.state.root)

    def client(self) -> ControlClient:
        return ControlClient.connect(self.state)

    def url(self, path: str) -> str:
        port = int(self.state.control_port.read_text())
        return f"http://127.0.0.1:{port}{path}"

    def token(self) -> str:
        return self.state.control_token.read_text().strip()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated GET on the control plane."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return requests.get(self.url(path), headers=headers, timeout=30, **kwargs)

    def worker_get(self, port: int, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated GET on a worker's status port (only /health is open)."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return requests.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        return requests.post(self.url(path), headers=headers, timeout=60, **kwargs)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`qkt ARGS --state-dir <this daemon's>`."""
        return qkt(*args, "--state-dir", self.root, timeout=timeout)

    def entries(self) -> dict[str, dict[str, Any]]:
        """`GET /list` by name (and remember every worker pid seen, to clean up)."""
        found = {e["name"]: e for e in self.get("/list").json()}
        self.seen_pids.update(e["pid"] for e in found.values() if e["pid"])
        return found

    def wait_state(self, name: str, state: str, timeout: float = 20) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            entry = self.entries().get(name)
            return entry if entry is not None and entry["state"] == state else None

        return wait_until(check, timeout=timeout, what=f"{name} {state}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the daemon and wait for its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        """Everything the daemon printed (call once it has exited)."""
        if self.reader is not None:
            self.reader.join(timeout=10)
        return "".join(self.lines)


@contextlib.contextmanager
def running_daemon(
    root: Path, *args: str, worker: str = FAKE_WORKER, ready: bool = True
) -> Iterator[RunningDaemon]:
    """`qkt daemon --state-dir ROOT ARGS...` until the block ends; nothing survives it."""
    state = StateDir(root)
    proc = subprocess.Popen(
        [PYTHON, "-m", "qkt", "daemon", "--state-dir", str(root), "--worker-module", worker, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(),
        cwd=REPO_ROOT,
    )
    daemon = RunningDaemon(proc, state)
    try:
        if ready:
            wait_until(
                lambda: proc.poll() is not None or _answers(daemon),
                timeout=60,
                what="the daemon's control plane",
            )
            assert proc.poll() is None, f"the daemon exited: {daemon.output()}"
        yield daemon
    finally:
        if proc.poll() is None:
            with contextlib.suppress(Exception):
                daemon.entries()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid in daemon.seen_pids:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if daemon.reader is not None:
            daemon.reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _answers(daemon: RunningDaemon) -> bool:
    try:
        return requests.get(daemon.url("/health"), timeout=2).status_code == 200
    except (OSError, ValueError, requests.RequestException):
        return False
