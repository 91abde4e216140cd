"""The simulated clock continues across restarts; the market at a moment is always the same."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import orjson
import pytest

from qkt.market.feed import FeedOptions
from qkt.market.history import fetch_all
from qkt.market.models import CandleKey
from qkt.market.simclock import start_ms_for
from qkt.market.simulated import SimHistory, SimulatedFeed, Walk
from tests.helpers import wait_until
from tests.market.feeds import Collector
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon, strategy

T0 = 1_767_225_600_000
WALL = 1_790_000_000_000
KEY = CandleKey.parse("SIM:BTCUSDT:1m")


def test_a_restart_continues_market_time_where_the_previous_clock_would_be(
    tmp_path: Path,
) -> None:
    clock = tmp_path / "sim-clock.json"
    first = start_ms_for(clock, speed=60, wall_ms=WALL)
    assert first == WALL  # no previous clock: the wall clock
    # Ten wall seconds later at speed 60 the market is ten minutes on, never back at wall time.
    assert start_ms_for(clock, speed=60, wall_ms=WALL + 10_000) == WALL + 600_000
    # A new speed continues from there at the new pace.
    assert start_ms_for(clock, speed=1, wall_ms=WALL + 20_000) == WALL + 600_000 + 600_000
    assert start_ms_for(clock, speed=1, wall_ms=WALL + 21_000) == WALL + 1_201_000
    clock.write_text("{broken")
    assert start_ms_for(clock, speed=1, wall_ms=WALL) == WALL  # unreadable: start afresh
    assert orjson.loads(clock.read_bytes())["market_ms"] == WALL  # and record a good one


def test_the_market_is_the_same_whenever_it_is_generated() -> None:
    later = Walk(1, "BTCUSDT", T0 + 30_000).trades_until(T0 + 60_000)
    whole = Walk(1, "BTCUSDT", T0).trades_until(T0 + 60_000)
    assert later == [t for t in whole if t[0] >= T0 + 30_000]


def test_live_candles_equal_history_candles_in_open_and_close() -> None:
    async def scenario() -> None:
        feed = SimulatedFeed(FeedOptions(seed=2, speed=6_000, sim_start_ms=T0 - 1))
        feed.subscribe(KEY)
        async with Collector(feed) as got:
            await asyncio.wait_for(_until(lambda: len(got.of(KEY)) >= 5), 60)
        live = got.of(KEY)[:5]
        past = await fetch_all(SimHistory(2), KEY, live[0].open_ms, live[-1].end_ms)
        assert [(c.open_ms, c.open, c.close) for c in past] == [
            (c.open_ms, c.open, c.close) for c in live
        ]

    asyncio.run(scenario())


async def _until(check: object) -> None:
    assert callable(check)
    while not check():
        await asyncio.sleep(0.01)


def test_a_killed_daemon_continues_the_simulated_market(tmp_path: Path) -> None:
    """Issue 11, defect 10: at speed 600 the market runs ahead of the wall clock; after kill -9
    and a restart it must go on from there, not restart at wall time (behind the journals)."""
    root = tmp_path / "s"
    source = strategy(tmp_path / "src", "continuing")
    source.write_text(source.read_text().replace("EVERY 1s", "EVERY 1m"))

    def newest_close(daemon: object) -> int:
        lines = daemon.get("/hub").json()  # type: ignore[attr-defined]
        return max((line["last_close_ts"] or 0) for line in lines) if lines else 0

    with running_daemon(root, "--speed", "600") as daemon:
        assert daemon.cli("deploy", str(source)).returncode == 0
        wall_then = _wall_ms()
        wait_until(lambda: newest_close(daemon) > wall_then + 20 * 60_000, timeout=60)
        ahead = newest_close(daemon)
        daemon.stop(signal.SIGKILL)
    with running_daemon(root, "--speed", "600") as daemon:
        wait_until(lambda: newest_close(daemon) > 0, timeout=60)
        assert newest_close(daemon) >= ahead


def _wall_ms() -> int:
    return time.time_ns() // 10**6


@pytest.mark.slow
def test_a_strategy_whose_market_went_back_says_so_once(tmp_path: Path) -> None:
    """Issue 11, defect 10: when the market's clock is behind a strategy's journal (here the
    simulated market lost its clock file), its live candles are skipped; that is said once, in
    the strategy's log, not left to look like a healthy strategy that never trades."""
    root = tmp_path / "s"
    source = strategy(tmp_path / "src", "behind")
    source.write_text(source.read_text().replace("EVERY 1s", "EVERY 1m"))

    def candles(daemon: RunningDaemon) -> int:
        status = daemon.get("/status/behind").json()
        return int(status.get("candles", {}).get("SIM:BTCUSDT:1m", 0))

    with running_daemon(root, "--speed", "600", worker=REAL_WORKER) as daemon:
        assert daemon.cli("deploy", str(source)).returncode == 0
        wait_until(lambda: candles(daemon) >= 30, timeout=90, what="30 live candles taken")
        assert daemon.stop() == 0
    (root / "sim-clock.json").unlink()  # the market starts again at wall time: 30 min behind
    with running_daemon(root, "--speed", "60", worker=REAL_WORKER) as daemon:

        def warnings() -> list[str]:
            lines = daemon.cli("logs", "behind", "--lines", "500").stdout.splitlines()
            return [line for line in lines if "ignoring live candles" in line]

        wait_until(lambda: warnings(), timeout=60, what="the warning in the strategy's log")
        skipped_from = newest_close(daemon)
        wait_until(lambda: newest_close(daemon) >= skipped_from + 3 * 60_000, timeout=60)
        assert candles(daemon) == 0  # nothing taken since the restart ...
        (line,) = warnings()  # ... and said once, not once a candle
        assert "WARNING" in line and "SIM:BTCUSDT:1m" in line and "min behind" in line


def newest_close(daemon: RunningDaemon) -> int:
    lines = daemon.get("/hub").json()
    return max((line["last_close_ts"] or 0) for line in lines) if lines else 0
