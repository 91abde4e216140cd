"""The figures a worker's heartbeat carries: its account and health, for the daemon to read.

`/metrics` (every strategy's equity, PnL, trades, halt, warm-up and feed freshness), `qkt list
-a` and the daemon-wide risk limits need a few figures of every running strategy. Asked over
HTTP they cost a `/status` request per worker: with a Prometheus scraping a thousand
strategies, or a daemon-wide limit checked every second, that was the daemon's busiest work.
Instead each worker stores them in its heartbeat file (`qkt.worker.heartbeat`), which the
daemon has mapped already, and the daemon reads them from memory when asked.

A beat stores them when they changed (a candle, a fill, a halt) and have then stayed the same
for a whole beat interval, or when they have kept changing for `MAX_AGE_S` (a market faster
than the beat): so they are a few seconds behind a candle at most, and never made while every
worker of the box is busy with the same candle (the burst at each minute), where that work
would delay them all. Every beat at which the stored figures are still the worker's own says so
(`confirm_figures`): their age, for the daemon, is the time since then, a beat at most while
the worker runs, however long since its last candle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import orjson

from qkt.money import to_str
from qkt.records import to_json
from qkt.worker.record import WorkerFigures

if TYPE_CHECKING:
    from qkt.engine import StrategyEngine
    from qkt.worker.heartbeat import HeartbeatWriter

log = logging.getLogger(__name__)

MAX_AGE_S: Final = 4.0  # figures that keep changing are stored at least this often


def engine_figures(engine: StrategyEngine, now_ms: int) -> WorkerFigures:
    """The figures of `engine` now."""
    account = engine.account
    return WorkerFigures(
        at_ms=now_ms,
        equity=to_str(account.equity),
        realized=to_str(account.realized_pnl),
        unrealized=to_str(account.unrealized_pnl),
        total_pnl=to_str(account.total_pnl),
        day_start_equity=to_str(engine.risk.day_start_equity),
        trades=engine.trade_count,
        warm=engine.warm,
        halted=engine.halt_info is not None,
        last_candle_ts={str(k): ms for k, ms in engine.last_candle_ms.items()},
    )


class HeartbeatFigures:
    """At each beat (`store`): the figures stored when due, and confirmed while current."""

    def __init__(
        self,
        engine: Callable[[], StrategyEngine | None],
        changes: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        """`changes`: a count that moves whenever the figures may have (the runner counts its
        reports of events: every candle, every verb). Asked at every beat, so it must cost
        next to nothing: an idle beat of a thousand workers touches no more than that."""
        self._engine = engine
        self._changes = changes
        self._clock = clock
        self._wall_ms = wall_ms
        self._seen: int | None = None  # `changes` at the last beat
        self._stored: int | None = None  # the same, when the stored figures were made
        self._moving_since: float | None = None  # first beat that saw them differ from stored

    def store(self, writer: HeartbeatWriter) -> None:
        """One beat's part: new figures into `writer`'s file when due (`due`), and the time,
        when what the file holds is what the worker has now."""
        text = self.due()
        if text is not None and not writer.write_figures(text):
            log.warning("figures of %d bytes do not fit the heartbeat file", len(text))
        elif self._stored is not None and self._stored == self._seen:
            writer.confirm_figures(self._wall_ms())

    def due(self) -> bytes | None:
        """The figures' text to store now, or None (nothing new to store)."""
        now_seen = self._changes()
        settled, self._seen = now_seen == self._seen, now_seen
        if now_seen == self._stored:
            return None
        engine = self._engine()
        if engine is None:
            return None
        now = self._clock()
        if self._moving_since is None:
            self._moving_since = now
        first = self._stored is None
        if not (first or settled or now - self._moving_since >= MAX_AGE_S):
            return None  # still moving (a candle since the last beat): store at the next one
        self._stored, self._moving_since = now_seen, None
        return orjson.dumps(to_json(engine_figures(engine, self._wall_ms())))
