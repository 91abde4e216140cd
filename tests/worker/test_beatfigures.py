"""A worker's figures in its heartbeat file: what the daemon's `/metrics` and `list -a` read.

The file format (`qkt.worker.heartbeat`): figures behind a length and a CRC-32, so a reader
never takes half-written text; when a beat stores them (`qkt.worker.beatfigures`): after they
changed and settled for a beat, not in the middle of a candle's burst; and a real daemon with a
real worker whose scrape follows its trades.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from qkt.dsl import compile_source
from qkt.engine import EngineConfig, StrategyEngine
from qkt.engine.protocols import MemoryJournal
from qkt.supervisor.figures import figures_from_beat
from qkt.worker.beatfigures import MAX_AGE_S, HeartbeatFigures
from qkt.worker.heartbeat import (
    BEAT,
    FIGURES_AT,
    FIGURES_MAX,
    HeartbeatReader,
    HeartbeatWriter,
)
from tests.engine.builder import candle
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, running_daemon

FLIPPER = """\
STRATEGY flipper VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1m
RULES
    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN POSITION.btc > 0 THEN CLOSE btc
"""


def test_the_reader_gets_the_figures_the_writer_stored(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    writer = HeartbeatWriter(path)
    reader = HeartbeatReader(path)
    assert reader.figures() is None  # none stored yet
    writer.beat(trades=3, halts=1, now=12.5)
    assert writer.write_figures(b'{"equity": "1000"}')
    assert reader.figures() == b'{"equity": "1000"}'
    assert reader.read().trades == 3  # the beat is untouched by the figures
    assert writer.write_figures(b"{}")  # shorter text replaces longer text whole
    assert reader.figures() == b"{}"


def test_half_written_figures_are_not_taken(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    writer = HeartbeatWriter(path)
    reader = HeartbeatReader(path)
    writer.write_figures(b'{"equity": "1000"}')
    # A reader that looks while the writer is between the text and its header sees text that
    # does not match the header's CRC: it gets nothing rather than a mix of two writes.
    with path.open("r+b") as file:
        file.seek(FIGURES_AT + 8 + 12)
        file.write(b"9")
    assert reader.figures() is None


def test_figures_too_long_for_the_file_are_refused_and_the_old_ones_stay(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    writer = HeartbeatWriter(path)
    writer.write_figures(b'{"equity": "1"}')
    assert not writer.write_figures(b"x" * (FIGURES_MAX + 1))
    assert HeartbeatReader(path).figures() == b'{"equity": "1"}'


def test_a_heartbeat_file_of_an_older_qkt_has_a_beat_and_no_figures(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    path.write_bytes(BEAT.pack(7.0, 123, 5, 0))  # the whole file an older worker made
    reader = HeartbeatReader(path)
    assert reader.read().pid == 123
    assert reader.figures() is None
    path.write_bytes(b"\0" * (BEAT.size - 1))
    assert HeartbeatReader.open(path) is None  # too small to be a heartbeat at all


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Changes:
    """The runner's count of reports: it moves with every candle and verb."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


def test_figures_are_stored_once_settled_and_hold_the_engines_account() -> None:
    engine = StrategyEngine(compile_source(FLIPPER), EngineConfig(), MemoryJournal())
    clock, changes = Clock(), Changes()
    due = HeartbeatFigures(lambda: engine, changes, clock=clock, wall_ms=lambda: 1_700_000_000_000)
    first = due.due()  # the first beat stores them at once
    assert first is not None
    figures = figures_from_beat(first)
    assert figures is not None
    assert (figures.equity, figures.trades, figures.halted) == ("10000", 0, False)
    assert figures.at_ms == 1_700_000_000_000
    clock.now += 2
    assert due.due() is None  # nothing changed
    engine.on_candle(candle(0, 100))  # a candle: a buy and a close fill
    changes.count += 1
    clock.now += 2
    assert due.due() is None  # a candle since the last beat: the burst is still on, wait
    clock.now += 2
    settled = due.due()  # unchanged for a beat: stored
    assert settled is not None
    stored = orjson.loads(settled)
    assert stored["trades"] == engine.trade_count == 2
    assert Decimal(stored["equity"]) == engine.account.equity
    assert stored["day_start_equity"] == "10000"
    assert stored["last_candle_ts"] == {"SIM:BTCUSDT:1m": candle(0, 100).open_ms}
    clock.now += 2
    assert due.due() is None


def test_figures_that_never_settle_are_still_stored_every_so_often() -> None:
    engine = StrategyEngine(compile_source(FLIPPER), EngineConfig(), MemoryJournal())
    clock, changes = Clock(), Changes()
    due = HeartbeatFigures(lambda: engine, changes, clock=clock)
    assert due.due() is not None
    stored = []
    for i in range(1, 12):  # a candle between every two beats (a fast simulated market)
        engine.on_candle(candle(i, 100 + i))
        changes.count += 1
        clock.now += 2
        stored.append(due.due())
    # Stored once they have kept changing for MAX_AGE_S (two beats of 2 s after the beat that
    # saw them move): every third beat, neither at every beat nor never.
    written = [i for i, text in enumerate(stored) if text is not None]
    assert written == list(range(2, len(stored), 3))


def test_a_beat_vouches_for_figures_that_have_not_moved(tmp_path: Path) -> None:
    """Between two candles a worker's figures do not change: each beat says the stored ones are
    still its own, so the daemon does not take them for old (a 1h strategy's figures are not an
    hour old ten minutes after its candle)."""
    engine = StrategyEngine(compile_source(FLIPPER), EngineConfig(), MemoryJournal())
    clock, changes, wall = Clock(), Changes(), [1_000_000]
    due = HeartbeatFigures(lambda: engine, changes, clock=clock, wall_ms=lambda: wall[0])
    writer = HeartbeatWriter(tmp_path / "heartbeat")
    reader = HeartbeatReader(tmp_path / "heartbeat")
    assert reader.figures_confirmed_ms() is None
    due.store(writer)  # stored, taken at 1,000,000
    for _ in range(3):  # idle beats
        wall[0] += 2000
        clock.now += 2
        due.store(writer)
    assert reader.figures_confirmed_ms() == 1_006_000
    engine.on_candle(candle(0, 100))
    changes.count += 1
    wall[0] += 2000
    clock.now += 2
    due.store(writer)  # moved since it stored them: not vouched for at this beat
    assert reader.figures_confirmed_ms() == 1_006_000
    assert orjson.loads(reader.figures() or b"")["trades"] == 0
    wall[0] += 2000
    clock.now += 2
    due.store(writer)  # settled: the new figures stored, taken now
    assert orjson.loads(reader.figures() or b"")["at_ms"] == 1_010_000


def test_no_engine_yet_no_figures() -> None:
    assert HeartbeatFigures(lambda: None, Changes()).due() is None


def _scrape(port: int) -> dict[str, float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("name") == "flipper" and "key" not in sample.labels:
                found[sample.name] = sample.value
    return found


@pytest.mark.slow
def test_a_real_workers_figures_reach_the_scrape_from_its_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "flipper.qkt"
    path.write_text(FLIPPER.replace("EVERY 1m", "EVERY 1s"))
    with running_daemon(tmp_path / "s", "--control-port", "0", worker=REAL_WORKER) as daemon:
        assert daemon.cli("deploy", str(path)).returncode == 0
        port = int((tmp_path / "s" / "control.port").read_text())
        # Stored before the worker said it was ready: the first scrape after the deploy has them.
        assert _scrape(port)["qkt_strategy_equity"] == 10000
        assert wait_until(lambda: _scrape(port).get("qkt_strategy_trades", 0) >= 2, timeout=60)
        first = _scrape(port)
        assert first["qkt_strategy_figures_age_seconds"] <= MAX_AGE_S + 4
        # They follow the worker: more trades, and the same as its own /status says of them.
        assert wait_until(
            lambda: _scrape(port)["qkt_strategy_trades"] > first["qkt_strategy_trades"],
            timeout=30,
        )
        listed = json.loads(daemon.cli("list", "-a", "--json").stdout)
        status = daemon.get("/status/flipper").json()
        assert listed[0]["trades"] <= status["trades"]
        assert listed[0]["equity"] is not None
