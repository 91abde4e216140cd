"""Real processes for worker tests: a hub on the simulated market, workers, `qkt run`.

Every context manager here kills and reaps what it started, whatever the test did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import requests

from qkt.hub import HubEndpoints
from tests.helpers import PYTHON, REPO_ROOT, wait_until

# Trades on every candle: buy when flat, then close at once (two fills per candle).
FLIP = """\
STRATEGY flip VERSION 3
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN POSITION.btc > 0 THEN CLOSE btc
"""
FLIP_KEY = "SIM:BTCUSDT:1s"
SPEED = 20.0  # market seconds per wall second: twenty 1s candles a second


class Proc:
    """A subprocess whose stdout and stderr lines are collected as they come."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            list(args),
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in ((self.popen.stdout, self.out), (self.popen.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.popen.pid

    def line_starting(self, prefix: str, timeout: float = 20.0) -> str:
        """The first stdout line that starts with `prefix` (waits for it)."""
        return wait_until(
            lambda: next((line for line in self.out if line.startswith(prefix)), None),
            timeout,
            what=f"a line starting with {prefix!r} (stdout {self.out[-5:]}, stderr {self.err})",
        )

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.popen.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.wait()


@contextmanager
def running(args: Sequence[str], env: dict[str, str] | None = None) -> Iterator[Proc]:
    """Start a process; kill and reap it on the way out if it is still there."""
    proc = Proc(args, env)
    try:
        yield proc
    finally:
        proc.kill()


@contextmanager
def hub_process(
    state_dir: Path, keys: Sequence[str], speed: float = SPEED
) -> Iterator[HubEndpoints]:
    """A CandleHub (tcp, SIM feed) in its own process, holding `keys`."""
    args = [PYTHON, "-m", "tests.worker.hub_host", str(state_dir), str(speed), *keys]
    with running(args) as proc:
        line = wait_until(lambda: proc.out[0] if proc.out else None, 20, what="hub endpoints")
        yield HubEndpoints.from_json(orjson.loads(line))
        proc.signal(signal.SIGTERM)
        proc.wait()


def worker_args(spec_json: bytes) -> list[str]:
    """`python -m qkt.worker SPEC_JSON`."""
    return [PYTHON, "-m", "qkt.worker", spec_json.decode()]


def qkt_args(*args: str | Path) -> list[str]:
    """`python -m qkt ARGS...`."""
    return [PYTHON, "-m", "qkt", *map(str, args)]


def get(port: int, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10, **kwargs)


def post(port: int, path: str, **kwargs: Any) -> requests.Response:
    return requests.post(f"http://127.0.0.1:{port}{path}", timeout=10, **kwargs)


def status_when(
    port: int, predicate: Any, timeout: float = 20.0, token: str | None = None
) -> dict[str, Any]:
    """Poll `/status` until `predicate(status)` holds; return that status. `token`: a worker
    under a daemon's token file wants it on every route but /health."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    def check() -> dict[str, Any] | None:
        status: dict[str, Any] = get(port, "/status", headers=headers).json()
        return status if predicate(status) else None

    return wait_until(check, timeout, what="a /status that satisfies the test")


def sse_events(
    port: int, wanted: set[str], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Read `/events` until every kind in `wanted` was seen; the events read, in order."""
    seen: list[dict[str, Any]] = []
    kinds: set[str] = set()
    with requests.get(
        f"http://127.0.0.1:{port}/events", stream=True, timeout=(5, 20), headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for raw in response.iter_lines(decode_unicode=True):
            if raw.startswith("id: "):
                event["sse_id"] = int(raw[4:])
            elif raw.startswith("event: "):
                event["event"] = raw[7:]
            elif raw.startswith("data: "):
                event["data"] = orjson.loads(raw[6:])
            elif raw == "" and event:
                seen.append(event)
                kinds.add(event["event"])
                event = {}
                if wanted <= kinds:
                    return seen
    raise AssertionError(f"the stream ended before {wanted - kinds} came")
