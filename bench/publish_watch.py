"""`PublishWatch`: when a running daemon's hub published each closed candle, seen from outside.

The burst bench measures a worker's latency from the moment the hub published its key's candle
(issue 17's definition), not from the minute's end: a feed may deliver a candle some milliseconds
after its close, and that is the feed's time, not the hub's or the worker's. A SUB socket of the
bench on the hub's PUB socket receives every candle as the workers do; the time the first of a
minute's candles arrives is when the hub sent them, give or take one local hop
(`scale_baselines.pyzmq_hop_ms`). The later ones of that minute may be seen late: the watch's
thread is then one more process among a thousand woken by the same candles.
"""

from __future__ import annotations

import threading
import time

import orjson
import zmq

from qkt.paths import StateDir

_POLL_MS = 200


class PublishWatch:
    """`start()`, `stop()`, then `published(minute)`: symbol -> when its candle went out."""

    def __init__(self, state: StateDir) -> None:
        self._endpoint = f"ipc://{state.hub_socket}"
        self._seen: dict[tuple[str, int], float] = {}  # (symbol, close epoch s) -> first seen
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publish-watch", daemon=True)

    def start(self) -> None:
        """Start watching (in a thread of its own)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; what was seen stays readable. Harmless if not started or stopped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def published(self, minute: int) -> dict[str, float]:
        """Symbol -> wall time (epoch s) the hub sent its candle closing at `minute` (epoch s)."""
        with self._lock:
            return {symbol: at for (symbol, close), at in self._seen.items() if close == minute}

    def _run(self) -> None:
        context = zmq.Context()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 100_000)
        sub.connect(self._endpoint)
        sub.subscribe(b"candle.")
        try:
            while not self._stop.is_set():
                if not sub.poll(_POLL_MS):
                    continue
                while True:
                    try:
                        topic, payload = sub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._note(topic, payload, time.time())
        finally:
            sub.close(linger=0)
            context.term()

    def _note(self, topic: bytes, payload: bytes, at: float) -> None:
        body = orjson.loads(payload)
        if body.get("type") != "candle":
            return  # a sync marker
        symbol = topic.split(b".")[2].decode()
        close = (body["open_ms"] + 60_000) // 1000  # the bench's strategies are all 1m
        with self._lock:
            self._seen.setdefault((symbol, close), at)
