"""`prewarm`: the worker's candle path run on made-up candles in a scratch journal at its start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qkt.dsl import compile_source
from qkt.engine import EngineConfig
from qkt.market.models import CandleKey
from qkt.worker.journal import SqliteJournal
from qkt.worker.prewarm import SCRATCH, made_up_candles, prewarm

FLIP_HOURLY = """\
STRATEGY flip VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1h
RULES
    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN POSITION.btc > 0 THEN CLOSE btc
"""


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_it_trades_the_program_in_a_scratch_journal_and_leaves_the_folder_as_it_was(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "journal.sqlite")  # the worker's own, open meanwhile
    before = _files(tmp_path)
    try:
        fills = prewarm(compile_source(FLIP_HOURLY), EngineConfig(), tmp_path)
        after = _files(tmp_path)
    finally:
        journal.close()
    assert fills >= 2  # the rules ran, an order filled and was journaled (in the scratch)
    assert after == before  # the real journal untouched, no scratch file left


def test_a_scratch_journal_left_by_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    (tmp_path / SCRATCH).write_bytes(b"half a journal" * 100)
    (tmp_path / f"{SCRATCH}-wal").write_bytes(b"x" * 100)
    fills = prewarm(compile_source(FLIP_HOURLY), EngineConfig(), tmp_path)
    assert fills >= 2  # not refused as a damaged journal: a new one was made
    assert list(tmp_path.iterdir()) == []


def test_a_failure_is_said_and_the_worker_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with caplog.at_level(logging.WARNING, logger="qkt.worker.prewarm"):
        fills = prewarm(compile_source(FLIP_HOURLY), EngineConfig(), not_a_folder)
    assert fills == 0
    assert [r.getMessage() for r in caplog.records][0].startswith(
        "could not warm the candle path before going live: "
    )


@pytest.mark.parametrize("timeframe", ["1m", "15m", "1h", "4h", "1d"])
def test_made_up_candles_follow_each_other_in_their_timeframe(timeframe: str) -> None:
    key = CandleKey.parse(f"SIM:BTCUSDT:{timeframe}")
    made = made_up_candles((key,), 5)
    step = key.timeframe.ms
    opens = [item.candle.open_ms for item in made]
    assert all(open_ms % step == 0 for open_ms in opens)
    assert opens == [opens[0] + i * step for i in range(5)]
    assert [item.snapshot for item in made] == [True, True, False, False, False]
