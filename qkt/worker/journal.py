"""`SqliteJournal`: one strategy's durable record (fills, orders, signals, equity, engine state).

SQLite in WAL mode with `synchronous=FULL`, so a committed candle survives a crash of the process
or of the machine. The worker wraps each candle in `transaction()`: the engine records fills,
orders and signals while it runs, the worker adds the equity snapshot and the engine's state, and
the whole candle commits at once, *before* any of its fills is reported anywhere. After a crash
the journal therefore holds exactly the candles whose effects were reported, and the saved state
continues from the last of them.

The schema version lives in `PRAGMA user_version`; a journal written by a newer qkt is refused.

A damaged journal (a page overwritten, a torn disk write: SQLite's `quick_check` fails) is found
at open, before any candle: it is moved aside as `journal.sqlite.corrupt-<time>` (its WAL with
it, as `...corrupt-<time>-wal`, so that `sqlite3` opens the copy as it was) and refused. The
strategy stays refused while such a copy lies in its folder without a journal: the books it held
are not silently replaced by a fresh account. Remove the copy (or move it elsewhere to recover
from it) to start the strategy afresh.

The journal and its `-wal`/`-shm` files are 0600 in a 0700 folder (SQLite gives the side files the
database's mode): fills and balances are nobody else's business.

The file's modes, the damage check's verdict, the setting aside of a damaged journal, the room
its WAL takes and the WAL size at which it is checkpointed are `qkt.worker.journalfile`'s.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

from qkt.engine import Account, EngineState, Fill, Order, SignalEvent
from qkt.engine.orders import FILL_FIELDS
from qkt.money import to_str
from qkt.paths import make_private_dir
from qkt.worker.journalfile import (
    SIDE_FILES,
    checkpoint_pages,
    create_private,
    is_corruption,
    move_aside,
    refuse_after_corruption,
    reserve_wal,
    tighten,
)
from qkt.worker.journalfile import JournalError as JournalError

if TYPE_CHECKING:
    from qkt.engine import EngineEvent, StrategyEngine
    from qkt.market.models import Candle

SCHEMA_VERSION: Final = 1
MAX_PAGE: Final = 1000
CACHE_KIB: Final = 256  # SQLite's page cache per journal

# `seq` is the rowid: the journal never deletes a row, so it only grows. AUTOINCREMENT would
# promise the same and cost an update of `sqlite_sequence` in every candle's transaction, one
# more page to write and flush per commit (journals made before 2026-12-03 still have it).
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY,           -- the engine's fill id: unique and increasing
    order_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,              -- epoch ms of the fill (market time)
    broker TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,                -- money and quantities as exact decimal strings
    price TEXT NOT NULL,
    fee TEXT NOT NULL,
    realized TEXT NOT NULL,
    position TEXT NOT NULL,
    role TEXT NOT NULL,
    rule INTEGER,
    recorded_ms INTEGER NOT NULL      -- wall clock
);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL,
    data TEXT NOT NULL                -- Order.to_json()
);
CREATE TABLE IF NOT EXISTS signals (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    candle_ms INTEGER NOT NULL,
    rule INTEGER NOT NULL,
    line INTEGER NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS equity (
    ts INTEGER PRIMARY KEY,           -- close time of the candle, epoch ms
    balance TEXT NOT NULL,
    equity TEXT NOT NULL,
    realized TEXT NOT NULL,
    unrealized TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_ms INTEGER NOT NULL,
    data TEXT NOT NULL                -- EngineState.to_json()
);
"""


_INSERT_FILL: Final = (
    f"INSERT INTO fills ({', '.join(FILL_FIELDS)}, recorded_ms) "
    f"VALUES ({', '.join('?' * (len(FILL_FIELDS) + 1))})"
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class SqliteJournal:
    """The engine's `Journal` on a SQLite file; also the worker's trade history and saved state."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        """`durable=False`: a scratch journal (`prewarm`), never flushed, no WAL reserved."""
        self.path = path
        self._durable = durable
        make_private_dir(path.parent)
        refuse_after_corruption(path)
        create_private(path)
        # Autocommit mode: transactions are explicit (`transaction()`), one per candle.
        self._db = sqlite3.connect(path, isolation_level=None)
        try:
            # SQLite's default page cache grows to 2 MiB a connection (the check below reads
            # every page; a long run touches ever more): a worker writes at the end of its
            # tables and needs a few dozen pages, and there may be a thousand workers.
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._check_intact()
            self._open()
        except sqlite3.DatabaseError as error:
            self._db.close()
            if is_corruption(error):
                self._refuse_damaged(str(error))
            raise JournalError(f"cannot open journal {path}: {error}") from None
        except BaseException:
            self._db.close()
            raise
        self._depth = 0

    def _check_intact(self) -> None:
        """`PRAGMA quick_check` (every page and index, without comparing index contents): the
        damage a crash or a bad disk leaves. Raises JournalError (after moving it aside)."""
        problems = [str(row[0]) for row in self._db.execute("PRAGMA quick_check(5)").fetchall()]
        if problems != ["ok"]:
            self._db.close()
            self._refuse_damaged("; ".join(problems))

    def _refuse_damaged(self, problem: str) -> None:
        aside = move_aside(self.path)
        raise JournalError(
            f"cannot open journal {self.path}: it is damaged ({problem}); moved it to "
            f"{aside.name} and not trading on it. To start this strategy afresh, remove "
            f"{aside.name} from {self.path.parent} (keep a copy elsewhere to recover its fills)"
        )

    def _open(self) -> None:
        for suffix in SIDE_FILES:  # left by an older qkt with the default mode
            tighten(f"{self.path}{suffix}")
        db = self._db
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} has schema version {version}, newer than this qkt reads "
                f"({SCHEMA_VERSION}): upgrade qkt, or move the journal away to start afresh"
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'OFF'}")
        db.execute("PRAGMA busy_timeout=5000")
        pages = checkpoint_pages(self.path)
        db.execute(f"PRAGMA wal_autocheckpoint={pages}")
        if self._durable:
            reserve_wal(self.path, int(db.execute("PRAGMA page_size").fetchone()[0]), pages)
        if version < SCHEMA_VERSION:
            with self._begin():
                self._create()
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _create(self) -> None:
        # executescript() would commit the open transaction first; run statement by statement.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)

    @contextlib.contextmanager
    def _begin(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- transactions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together, or not at all (nested uses join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with self._begin():
                yield
        finally:
            self._depth = 0

    # -- the engine's Journal ----------------------------------------------------------------

    def record_fill(self, fill: Fill) -> None:
        """Insert a fill (inside the candle's transaction)."""
        self._db.execute(_INSERT_FILL, (*fill.values(), _now_ms()))

    def record_order(self, order: Order) -> None:
        """Append an order's new state."""
        self._db.execute(
            "INSERT INTO orders (order_id, status, recorded_ms, data) VALUES (?, ?, ?, ?)",
            (order.id, order.status.value, _now_ms(), orjson.dumps(order.to_json()).decode()),
        )

    def record_signal(self, signal: SignalEvent) -> None:
        """Append a rule that fired."""
        self._db.execute(
            "INSERT INTO signals (ts, candle_ms, rule, line, stream, text) VALUES (?,?,?,?,?,?)",
            (signal.ts, signal.candle_ms, signal.rule, signal.line, signal.stream, signal.text),
        )

    # -- the worker's records ----------------------------------------------------------------

    def commit_candle(self, engine: StrategyEngine, candle: Candle) -> list[EngineEvent]:
        """A live candle traded as one transaction (the fills, orders and signals the engine
        journals, the equity row, the engine's state), committed before any of its events is
        reported; the events."""
        with self.transaction():
            events = engine.on_candle(candle)
            self.record_equity(candle.end_ms, engine.account)
            self.save_state(engine.export_state())
        return events

    def record_equity(self, ts: int, account: Account) -> None:
        """The account after the candle closing at `ts` (one row per close time)."""
        self._db.execute(
            "INSERT OR REPLACE INTO equity (ts, balance, equity, realized, unrealized) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                ts,
                to_str(account.balance),
                to_str(account.equity),
                to_str(account.realized_pnl),
                to_str(account.unrealized_pnl),
            ),
        )

    def save_state(self, state: EngineState) -> None:
        """Replace the saved engine state."""
        self._db.execute(
            "INSERT OR REPLACE INTO state (id, saved_ms, data) VALUES (1, ?, ?)",
            (_now_ms(), orjson.dumps(state.to_json()).decode()),
        )

    def load_state(self) -> EngineState | None:
        """The last saved engine state, or None for a new journal."""
        row = self._db.execute("SELECT data FROM state WHERE id = 1").fetchone()
        if row is None:
            return None
        try:
            return EngineState.from_json(orjson.loads(row[0]))
        except orjson.JSONDecodeError as error:
            raise JournalError(f"journal {self.path}: saved state is not JSON: {error}") from None

    # -- reading -----------------------------------------------------------------------------

    def trades(self, *, after: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Fills as `Fill.to_json()`, oldest first: those with an id above `after` (the first
        `limit` of them), or without `after` the last `limit`."""
        limit = max(0, min(limit, MAX_PAGE))
        columns = ", ".join(FILL_FIELDS)
        if after is None:
            rows = self._db.execute(
                f"SELECT {columns} FROM fills ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
            rows.reverse()
        else:
            rows = self._db.execute(
                f"SELECT {columns} FROM fills WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        return [dict(zip(FILL_FIELDS, row, strict=True)) for row in rows]

    def trade_count(self) -> int:
        """How many fills the journal holds."""
        return int(self._db.execute("SELECT COUNT(*) FROM fills").fetchone()[0])

    def equity_curve(self) -> list[tuple[int, str]]:
        """(close time, equity) per recorded candle, oldest first."""
        rows = self._db.execute("SELECT ts, equity FROM equity ORDER BY ts").fetchall()
        return [(int(ts), str(value)) for ts, value in rows]

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()
