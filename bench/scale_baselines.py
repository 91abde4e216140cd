"""The baselines bench_scale measures qkt against, in the same run on the same box."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import zmq

# A bare process with what a worker cannot do without: fastapi served by uvicorn, and a pyzmq
# SUB socket. It prints its port once it serves, then waits to be measured.
BARE = """
import socket, sys, uvicorn, zmq
from fastapi import FastAPI
app = FastAPI()
@app.get("/health")
def health():
    return {"status": "ok"}
sub = zmq.Context().socket(zmq.SUB)
sub.connect("tcp://127.0.0.1:1")
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen()
config = uvicorn.Config(app, log_level="warning")
server = uvicorn.Server(config)
import asyncio, threading
def announce():
    while not server.started:
        import time; time.sleep(0.01)
    print(sock.getsockname()[1], flush=True)
threading.Thread(target=announce, daemon=True).start()
asyncio.run(server.serve(sockets=[sock]))
"""


def bare_process_rss() -> int:
    """RSS (bytes) of a bare fastapi + uvicorn + pyzmq process once it serves."""
    proc = subprocess.Popen([sys.executable, "-c", BARE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.5)
        return int(psutil.Process(proc.pid).memory_info().rss)
    finally:
        proc.kill()
        proc.wait()


def pyzmq_hop_ms(count: int = 2000) -> tuple[float, float]:
    """p50 and p99 (ms) of one raw pyzmq PUB -> SUB hop over ipc (send to receive)."""
    context = zmq.Context()
    with tempfile.TemporaryDirectory() as tmp:
        address = f"ipc://{Path(tmp) / 'hop'}"
        pub = context.socket(zmq.PUB)
        pub.bind(address)
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(address)
        payload = b"x" * 200  # about a candle's JSON
        while not sub.poll(10):  # the slow joiner: wait until the subscription has arrived
            pub.send(payload)
        while sub.poll(0):
            sub.recv()
        hops = []
        for _ in range(count):
            start = time.perf_counter()
            pub.send(payload)
            sub.recv()
            hops.append((time.perf_counter() - start) * 1000)
        pub.close(0)
        sub.close(0)
    context.term()
    hops.sort()
    return hops[len(hops) // 2], hops[int(len(hops) * 0.99)]


def timed_runs(command: list[str], runs: int = 5) -> float:
    """Median wall time (s) of running `command` to its end."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
