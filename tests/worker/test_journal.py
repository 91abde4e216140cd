"""SqliteJournal: one transaction per candle, the state restored, newer schemas refused."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from qkt.dsl import compile_source
from qkt.engine import EngineConfig, StrategyEngine, TradeEvent
from qkt.market.models import Candle, CandleKey
from qkt.worker.journal import CACHE_KIB, SCHEMA_VERSION, JournalError, SqliteJournal

KEY = CandleKey.parse("SIM:BTCUSDT:1m")
PROGRAM = compile_source(
    "STRATEGY j VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m\n"
    "RULES WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.5\n"
)


FLIP = compile_source(
    "STRATEGY f VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m\n"
    "RULES WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n"
    "WHEN POSITION.btc > 0 THEN CLOSE btc\n"
)  # a buy on one candle, its close on the next


def _candle(i: int, close: str) -> Candle:
    price = Decimal(close)
    return Candle(KEY, 1_767_225_600_000 + i * 60_000, price, price, price, price, Decimal(1))


def _step(journal: SqliteJournal, engine: StrategyEngine, candle: Candle) -> None:
    with journal.transaction():
        engine.on_candle(candle)
        journal.record_equity(candle.end_ms, engine.account)
        journal.save_state(engine.export_state())


def test_a_restarted_engine_continues_from_the_saved_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = SqliteJournal(path)
    engine = StrategyEngine(PROGRAM, EngineConfig(), journal)
    _step(journal, engine, _candle(0, "100.5"))
    _step(journal, engine, _candle(1, "101.25"))
    journal.close()

    reopened = SqliteJournal(path)
    restored = StrategyEngine(PROGRAM, EngineConfig(), reopened, reopened.load_state())
    assert restored.trade_count == 1
    assert [(p.qty, p.avg_price) for p in restored.positions] == [
        (Decimal("0.5"), Decimal("100.5"))
    ]
    assert restored.account.unrealized_pnl == Decimal("0.375")
    assert reopened.trades() == [
        {
            "id": 1, "order_id": 1, "ts": 1_767_225_660_000, "broker": "SIM", "symbol": "BTCUSDT",
            "side": "BUY", "qty": "0.5", "price": "100.5", "fee": "0", "realized": "0",
            "position": "0.5", "role": "ENTRY", "rule": 0,
        }
    ]  # fmt: skip
    assert reopened.equity_curve() == [
        (1_767_225_660_000, "10000"),
        (1_767_225_720_000, "10000.375"),
    ]
    reopened.close()


def test_a_failed_candle_leaves_nothing_behind(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    engine = StrategyEngine(PROGRAM, EngineConfig(), journal)
    with pytest.raises(RuntimeError), journal.transaction():
        engine.on_candle(_candle(0, "100"))
        raise RuntimeError("disk full, say")
    assert journal.trade_count() == 0 and journal.load_state() is None
    journal.close()


def test_trades_page_forward_and_the_default_is_the_latest(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    engine = StrategyEngine(FLIP, EngineConfig(), journal)
    for i in range(5):
        _step(journal, engine, _candle(i, "100"))
    assert journal.trade_count() == 10
    assert [t["id"] for t in journal.trades(after=0, limit=4)] == [1, 2, 3, 4]
    assert [t["id"] for t in journal.trades(after=8, limit=4)] == [9, 10]
    assert [t["id"] for t in journal.trades(limit=3)] == [8, 9, 10]
    journal.close()


def test_a_journaled_fill_reads_back_as_the_fill_itself(tmp_path: Path) -> None:
    # Every column as Fill.to_json writes it (the journal fills its row without that dict),
    # with fees and a realized loss among them.
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    engine = StrategyEngine(FLIP, EngineConfig(fee_bps=Decimal("7.5")), journal)
    fills = []
    for i, close in enumerate(["100.5", "101.25", "99.125"]):
        with journal.transaction():
            events = engine.on_candle(_candle(i, close))
        fills += [event.fill for event in events if isinstance(event, TradeEvent)]
    assert len(fills) >= 3 and all(fill.fee for fill in fills)
    assert any(fill.realized < 0 for fill in fills)
    assert journal.trades() == [fill.to_json() for fill in fills]
    journal.close()


def test_a_journal_from_a_newer_qkt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError, match="newer than this qkt reads"):
        SqliteJournal(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"not sqlite at all, just some bytes that go on" * 100)
    with pytest.raises(JournalError, match="cannot open journal"):
        SqliteJournal(path)


def test_the_journal_is_in_wal_mode(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    journal.close()
    with closing(sqlite3.connect(tmp_path / "journal.sqlite")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_journal_page_cache_is_bounded(tmp_path: Path) -> None:
    # SQLite's default (2 MiB a connection) times a thousand workers would be 2 GiB.
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    try:
        assert journal._db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
    finally:
        journal.close()
