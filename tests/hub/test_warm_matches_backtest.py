"""Issue 12's "exact" point, through a real daemon and a real worker: a SIM strategy warmed from
the hub's history and then fed live candles computes, at every candle, the very EMA(50) value
that a backtest computes over the same history (fetched with `qkt fetch` from the same seeded
market), and its first signal fires on the first live candle.

The market runs 60 times the wall clock (a 1m candle about every second) and starts six hours in
the past (`sim-clock.json`, as a restarted daemon continues it), so every candle the daemon
serves is already in the past of the wall clock that `qkt fetch` reads SIM history up to.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson
import pytest

from qkt.dsl import compile_file
from qkt.engine import SignalEvent, StrategyEngine
from qkt.market.replay import replay_candles
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, qkt, running_daemon

pytestmark = pytest.mark.slow

MINUTE: Final = 60_000
SPEED: Final = 60  # market seconds per wall second: a 1m candle about every second
SEED: Final = 7
KEY: Final = "SIM:BTCUSDT:1m"
EMA: Final = "EMA(btc.close, 50)"
LIVE_CANDLES: Final = 12  # live candles to see before comparing
SAMPLED: Final = 6  # distinct live candles the status must have been read at, at least
NAME: Final = "mirrored"
# Rule 0 fires on every candle the EMA is defined at while flat: on the first live candle if the
# strategy is warm before it. Rules 1 and 2 fire where the close crosses the EMA, so which
# candles they fire on depends on the EMA values and on the CROSSES state carried by warm-up.
SOURCE: Final = f"""\
STRATEGY {NAME} VERSION 1
SYMBOLS btc = {KEY.rsplit(":", 1)[0]} EVERY 1m
RULES
    WHEN {EMA} > 0 AND POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN btc.close CROSSES ABOVE {EMA} THEN LOG 'close crossed above the EMA'
    WHEN btc.close CROSSES BELOW {EMA} THEN LOG 'close crossed below the EMA'
"""


def start_market_hours_ago(root: Path, hours: int) -> None:
    """The daemon's simulated market continues from `hours` before the wall clock."""
    root.mkdir(parents=True, exist_ok=True)
    now = time.time_ns() // 10**6
    body = {"market_ms": now - hours * 3_600_000, "wall_ms": now, "speed": SPEED}
    (root / "sim-clock.json").write_bytes(orjson.dumps(body))


class Samples:
    """The worker's `/status` read again and again: the EMA at each candle it was read at."""

    def __init__(self, daemon: RunningDaemon, port: int) -> None:
        self._daemon, self._port = daemon, port
        self.ema: dict[int, Decimal] = {}  # candle open ms -> EMA(50) after that candle
        self.first_ms: set[int] = set()  # where each reading says the strategy's candles began
        self.first_live_ms: set[int] = set()  # where each reading says the live ones began
        self.undefined_while_warm: list[dict[str, Any]] = []  # readings that contradict
        self.live = 0

    def read(self) -> bool:
        """One reading; True once enough live candles have been seen and sampled."""
        status: dict[str, Any] = self._daemon.worker_get(self._port, "/status").json()
        if not status["warm"]:
            return False
        value = status["indicators"][EMA]
        if value is None:  # warm means every indicator has a value (asserted by the test)
            self.undefined_while_warm.append(status)
            return False
        last = status["last_candle_ts"][KEY]
        self.ema[last] = Decimal(value)
        # Warm-up candles, then live ones, one a minute without a gap. (Warm can come in the
        # middle of the warm-up, so only a reading after a live candle knows where it ended.)
        warmup, self.live = status["warmup_candles"], status["candles"].get(KEY, 0)
        first = last - (warmup + self.live - 1) * MINUTE
        self.first_ms.add(first)
        if self.live:
            self.first_live_ms.add(first + warmup * MINUTE)
        sampled = [ms for ms in self.ema if ms >= min(self.first_live_ms, default=last + 1)]
        return self.live >= LIVE_CANDLES and len(sampled) >= SAMPLED


def test_live_ema_50_equals_the_backtest_over_the_same_history(tmp_path: Path) -> None:
    source = tmp_path / f"{NAME}.qkt"
    source.write_text(SOURCE)
    root = tmp_path / "s"
    start_market_hours_ago(root, 6)
    args = ("--speed", str(SPEED), "--seed", str(SEED))
    with running_daemon(root, *args, worker=REAL_WORKER) as daemon:
        deployed = daemon.cli("deploy", str(source))
        assert deployed.returncode == 0, deployed.stderr
        port = daemon.wait_state(NAME, "running", timeout=60)["port"]
        samples = Samples(daemon, port)
        wait_until(samples.read, timeout=120, what=f"{LIVE_CANDLES} live candles, sampled")
        events = daemon.worker_get(port, "/logs", params={"since": 0, "limit": 1000}).json()
    assert samples.undefined_while_warm == []
    # Every reading agrees on where the candles began: they were contiguous.
    ((first,), (first_live,)) = samples.first_ms, samples.first_live_ms
    assert first_live - first >= 50 * MINUTE  # warmed by at least the EMA's period of history
    live_closes = {
        e["open_ms"]: Decimal(e["close"]) for e in events["events"] if e["type"] == "candle"
    }
    assert min(live_closes) == first_live and len(live_closes) >= LIVE_CANDLES
    last = max(live_closes)

    csv = tmp_path / "btc.csv"
    fetched = qkt(
        "fetch", KEY, "--from", str(first), "--to", str(last + MINUTE),
        "--seed", str(SEED), "-o", str(csv),
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    backtest = _backtest(csv, source)
    assert min(backtest.close) == first and max(backtest.close) == last

    # The same series: every live candle the worker processed closed where the fetched one does.
    assert live_closes == {ms: backtest.close[ms] for ms in live_closes}

    # The values: at every candle the status was read at, the backtest's EMA exactly.
    assert len([ms for ms in samples.ema if ms >= first_live]) >= SAMPLED
    assert {ms: backtest.ema[ms] for ms in samples.ema} == samples.ema

    # Warm before the first live candle: rule 0 fired on it.
    signals = {(e["rule"], e["candle_ms"]) for e in events["events"] if e["type"] == "signal"}
    assert (0, first_live) in signals
    # The crossings seen live are the backtest's over the live candles (rules 1 and 2).
    live_range = range(first_live, last + 1)
    crossings = {(rule, ms) for rule, ms in signals if rule != 0}
    assert crossings == {(r, ms) for r, ms in backtest.signals if r != 0 and ms in live_range}


class _Backtest:
    """What a fresh engine computed over the fetched candles, candle by candle."""

    def __init__(self) -> None:
        self.ema: dict[int, Decimal] = {}
        self.close: dict[int, Decimal] = {}
        self.signals: list[tuple[int, int]] = []


def _backtest(csv: Path, source: Path) -> _Backtest:
    """Replay `csv` through a fresh engine as `qkt backtest` does (one candle at a time from
    `replay_candles`, `on_candle` each), noting the EMA after every candle."""
    program = compile_file(source)
    engine = StrategyEngine(program)
    result = _Backtest()
    for candle in replay_candles(csv, program.keys):
        for event in engine.on_candle(candle):
            if isinstance(event, SignalEvent):
                result.signals.append((event.rule, event.candle_ms))
        value = engine.indicators[EMA]
        if value is not None:
            result.ema[candle.open_ms] = value
        result.close[candle.open_ms] = candle.close
    return result
