"""A small fake worker that honours the WorkerSpec contract, for the supervisor's failure tests.

`python -m tests.supervisor.fake_worker SPEC_JSON`, or `run_worker(spec)` in a forked child.
It serves /health, /status (with a growing `trades`), /metrics and POST /stop (bearer token),
writes its port file once it answers, beats its heartbeat (as a real worker, with the trade
count of its /status), exits 0 on SIGTERM, exits when `spec.parent_pid` dies, refuses to run
twice under one name, and logs only to its own log file.

Behaviour is chosen by comment lines in the strategy file (the file still compiles):
    -- fake: crash-after SECONDS     exit with code 3 after SECONDS
    -- fake: exit-at-start CODE      exit with CODE before serving
    -- fake: never-ready             run, but never write the port file
    -- fake: hang-after SECONDS      stop answering HTTP and beating after SECONDS (hung)
    -- fake: ignore-sigterm          ignore SIGTERM (only SIGKILL stops it)
    -- fake: broken-status           answer /status with a 500 (but /health with ok)
    -- fake: figures-only            answer /status with a 500, but store figures in the
                                     heartbeat file as a real worker does (so whatever the
                                     daemon shows of them came from there)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from qkt import log as qkt_log
from qkt.atomic import write_atomic
from qkt.records import to_json
from qkt.worker.heartbeat import HeartbeatWriter, heartbeat_file
from qkt.worker.record import WorkerFigures
from qkt.worker.spec import WorkerSpec

log = logging.getLogger("qkt.fake_worker")


def directives(source: str) -> dict[str, str]:
    """`-- fake: NAME [VALUE]` lines of the deployed source (the spec's, as a real worker)."""
    found: dict[str, str] = {}
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("-- fake:"):
            name, _, value = text.removeprefix("-- fake:").strip().partition(" ")
            found[name] = value.strip()
    return found


class FakeWorker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.rules = directives(spec.source)
        self.started = time.time()
        self.stop = threading.Event()
        # Set by SIGTERM's handler. Not `stop.set()` there: the handler runs in the main thread
        # between two bytecodes, possibly while that thread holds the event's own lock inside
        # `stop.wait()`, and the lock is not reentrant: the worker hung (and outlived its test).
        self.terminated = False
        self.hung = threading.Event()
        self.flattened = False
        self.heartbeat: HeartbeatWriter | None = None

    def status(self) -> dict[str, Any]:
        """A `/status` of the real worker's shape (`qkt.worker.schemas.StatusOut`): the daemon
        checks what it passes on against its schema."""
        uptime = time.time() - self.started
        return {
            "strategy": Path(self.spec.file).stem,
            "version": 1,
            "name": self.spec.name,
            "pid": os.getpid(),
            "state": "running",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "uptime_ms": int(uptime * 1000),
            "file": self.spec.file,
            "source_hash": self.spec.source_hash,
            "start_balance": self.spec.balance,
            "balance": self.spec.balance,
            "equity": self.spec.balance,
            "realized": "0",
            "unrealized": "0",
            "total_pnl": "0",
            "fees": "0",
            "positions": [],
            "open_orders": [],
            "trades": self.trades(),
            "last_trade": None,
            "keys": [],
            "last_candle_ts": {},
            "warm": True,
            "candles": {},
            "warmup_candles": 0,
            "fee_bps": self.spec.fee_bps,
            "slippage_bps": self.spec.slippage_bps,
            "fill_at": "close",
            "sim": self.spec.sim,
            "subscriber": None,
            "events": {"last_id": 0, "subscribers": 0, "dropped": 0},
            "fake": True,
        }

    def figures(self) -> bytes:
        """What a real worker stores in its heartbeat file, through the same record."""
        status = self.status()
        figures = WorkerFigures(
            at_ms=int(time.time() * 1000),
            equity=status["equity"],
            realized=status["realized"],
            unrealized=status["unrealized"],
            total_pnl=status["total_pnl"],
            day_start_equity=status["equity"],
            trades=status["trades"],
            warm=status["warm"],
            halted=False,
            last_candle_ts=status["last_candle_ts"],
        )
        return json.dumps(to_json(figures)).encode()

    def trades(self) -> int:
        return int((time.time() - self.started) / 0.2)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, content: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _hang_if_hung(self) -> None:
                while worker.hung.is_set():
                    time.sleep(1)

            def do_GET(self) -> None:
                self._hang_if_hung()
                path = urlparse(self.path).path
                if path == "/health":
                    self._send(200, {"status": "ok"})
                elif path == "/status" and worker.rules.keys() & {"broken-status", "figures-only"}:
                    self._send(500, {"error": {"code": "internal", "message": "broken"}})
                elif path == "/status":
                    self._send(200, worker.status())
                elif path == "/metrics":
                    self._send(200, b"qkt_fake_up 1\n", "text/plain")
                else:
                    self._send(404, {"error": {"code": "not_found", "message": path}})

            def do_POST(self) -> None:
                self._hang_if_hung()
                url = urlparse(self.path)
                if url.path != "/stop":
                    self._send(404, {"error": {"code": "not_found", "message": url.path}})
                    return
                token = (
                    Path(worker.spec.token_file).read_text().strip()
                    if (worker.spec.token_file)
                    else ""
                )
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self._send(401, {"error": {"code": "unauthorized", "message": "token"}})
                    return
                worker.flattened = parse_qs(url.query).get("flatten") == ["true"]
                self._send(202, {"status": "stopping"})
                worker.stop.set()

        return Handler

    def run(self) -> int:
        spec = self.spec
        qkt_log.configure(file=spec.log_file)
        spec.state.strategy_dir(spec.name).mkdir(parents=True, exist_ok=True)
        lock = open(spec.state.strategy_dir(spec.name) / "worker.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.error("another worker runs %s", spec.name)
            return 4
        if "exit-at-start" in self.rules:
            log.error("fake: exiting at start")
            return int(self.rules["exit-at-start"] or 1)
        if "ignore-sigterm" in self.rules:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGTERM, self._on_sigterm)
        server = ThreadingHTTPServer((spec.bind, spec.port), self.handler())
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        log.info("fake worker %s started (pid %d, port %d)", spec.name, os.getpid(), port)
        if spec.parent_pid is not None:
            self.heartbeat = HeartbeatWriter(heartbeat_file(spec.state_dir, spec.name))
        if "never-ready" not in self.rules:
            write_atomic(spec.port_file, f"{port}\n")
        return self.loop()

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self.terminated = True  # the loop sees it within its 50 ms tick

    def loop(self) -> int:
        crash_after = float(self.rules.get("crash-after") or "inf")
        hang_after = float(self.rules.get("hang-after") or "inf")
        while not self.stop.wait(0.05) and not self.terminated:
            age = time.time() - self.started
            if self.spec.parent_pid is not None and not _alive(self.spec.parent_pid):
                log.warning("fake: the daemon is gone, exiting")
                return 0
            if age > crash_after:
                log.error("fake: crashing as told")
                return 3
            if age > hang_after and not self.hung.is_set():
                log.warning("fake: hanging as told")
                self.hung.set()
            if self.heartbeat is not None and not self.hung.is_set():
                # A broken /status knows no trade count: the daemon must not make one up.
                self.heartbeat.beat(None if "broken-status" in self.rules else self.trades())
                if "broken-status" not in self.rules:
                    self.heartbeat.write_figures(self.figures())
            log.debug("tick")
        log.info("fake worker %s stopping (flatten=%s)", self.spec.name, self.flattened)
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return os.getppid() == pid


def run_worker(spec: WorkerSpec) -> int:
    """The worker entry point the fork server calls."""
    return FakeWorker(spec).run()


if __name__ == "__main__":
    sys.exit(run_worker(WorkerSpec.from_json(sys.argv[1])))
