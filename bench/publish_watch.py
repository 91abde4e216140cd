"""`PublishWatch`: when a running daemon's hub published each closed candle, by the hub's clock.

The burst bench measures a worker's latency from the moment the hub published its key's candle
(issue 17's definition), not from the minute's end: a feed delivers a candle some milliseconds
after its close, and that is the feed's time, not the hub's or the worker's. Watching the hub's
PUB socket from outside would not tell that moment: a candle reaches one more subscriber after
ZeroMQ fanned it out to a thousand workers' connections, and the bench is then one more process
among the thousand woken ones. The hub itself knows: `GET /hub` gives each key's
`last_candle_age_ms`, the time since the hub took (and sent) its last candle. Asked once a
second from 25 to 30 s past each minute (after the burst, whose CPU the bench measures, and
before the next candle), the answer with the shortest round trip gives the send time within
half of it.
"""

from __future__ import annotations

import threading
import time

from qkt.control.client import ControlClient
from qkt.errors import QktError
from qkt.market.models import CandleKey
from qkt.paths import StateDir

_EVERY_S = 1.0
_ASK_FROM_S, _ASK_UNTIL_S = 25.0, 30.0  # past each minute
ASKED_BY_S = _ASK_UNTIL_S + 1.0  # past a minute, that minute's candles are known


class PublishWatch:
    """`start()`, `stop()`, then `published(minute)`: symbol -> when its candle went out."""

    def __init__(self, state: StateDir) -> None:
        self._state = state
        # (symbol, close epoch s) -> (round trip of the best answer, wall time it gives)
        self._seen: dict[tuple[str, int], tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publish-watch", daemon=True)

    def start(self) -> None:
        """Start asking (in a thread of its own)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop asking; what was seen stays readable. Harmless if not started or stopped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def published(self, minute: int) -> dict[str, float]:
        """Symbol -> wall time (epoch s) the hub sent its candle closing at `minute` (epoch s)."""
        with self._lock:
            seen = self._seen.items()
            return {symbol: at for (symbol, close), (_, at) in seen if close == minute}

    def _run(self) -> None:
        client = ControlClient.connect(self._state)
        try:
            while not self._stop.wait(_EVERY_S):
                asked = time.time()
                if not _ASK_FROM_S <= asked % 60 < _ASK_UNTIL_S:
                    continue
                try:
                    keys = client.hub()
                except QktError:
                    continue  # a busy or restarting daemon: the next answer will do
                answered = time.time()
                trip = answered - asked
                for key in keys:
                    if key.last_close_ts is None or key.last_candle_age_ms is None:
                        continue
                    symbol = CandleKey.parse(key.key).symbol
                    sent = (asked + answered) / 2 - key.last_candle_age_ms / 1000
                    self._note((symbol, key.last_close_ts // 1000), trip, sent)
        finally:
            client.close()

    def _note(self, candle: tuple[str, int], trip: float, sent: float) -> None:
        with self._lock:
            best = self._seen.get(candle)
            if best is None or trip < best[0]:
                self._seen[candle] = (trip, sent)
