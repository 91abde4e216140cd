"""`prewarm()`: a worker's own candle path run once on made-up candles before it goes live.

A worker forked from the fork server shares that process's memory page by page until it writes
to a page, and running Python writes to what it runs: every call changes the reference counts of
the function, its code and the objects it reads. So the first candle a worker handles copies a
few hundred such pages for itself (page faults, ~200 measured) and costs it about twice the CPU
of the next one (docs/performance.md, "The first candle after a fork"). After a deploy or a
daemon restart, a thousand workers meet that first candle in the same second, and the burst pays
it a thousand times over.

Run here, at the worker's start (which the spawner spreads out), the same pages are copied then:
the worker's own program (its rules, indicators and orders) on a scratch engine, journaled in a
scratch journal beside the real one (not flushed, removed afterwards), fed candles that went
through the hub's wire format. Nothing of it reaches the worker's journal, account, log or
events; a failure is only said, since the worker trades all the same without it.
"""

from __future__ import annotations

import contextlib
import logging
from decimal import Decimal
from pathlib import Path
from typing import Final

from qkt.dsl import Program
from qkt.engine import EngineConfig, StrategyEngine, TradeEvent
from qkt.hub import SequencedCandle
from qkt.hub.wire import decode_message, encode_candle
from qkt.market.models import Candle, CandleKey
from qkt.worker.journal import SqliteJournal
from qkt.worker.journalfile import SIDE_FILES

# The first candle copies most of what any candle touches; the next ones what follows an entry
# (the position's marks, an exit, its fill).
CANDLES: Final = 3
SCRATCH: Final = "prewarm.sqlite"
_START_MS: Final = 1_700_000_000_000

log = logging.getLogger(__name__)


def prewarm(program: Program, config: EngineConfig, folder: Path) -> int:
    """Trade `program` on made-up candles in a scratch journal in `folder`; the fills it made
    (0 if it failed, which is logged: the worker goes on without it)."""
    scratch = folder / SCRATCH
    try:
        _remove(scratch)  # one left by a worker killed while it warmed
        journal = SqliteJournal(scratch, durable=False)
        try:
            engine = StrategyEngine(program, config, journal)
            fills = 0
            for item in made_up_candles(program.keys, CANDLES):
                decoded = decode_message(encode_candle(item))  # the hub's wire, both ways
                assert isinstance(decoded, SequencedCandle)
                events = journal.commit_candle(engine, decoded.candle)  # as the runner does
                fills += sum(1 for event in events if isinstance(event, TradeEvent))
            return fills
        finally:
            journal.close()
    except Exception as error:  # a warm-up must never stop a worker trading
        log.warning("could not warm the candle path before going live: %s", error)
        return 0
    finally:
        _remove(scratch)


def made_up_candles(keys: tuple[CandleKey, ...], count: int) -> list[SequencedCandle]:
    """`count` closed candles a key, one after another in its timeframe, in a zigzag so that
    averages cross both ways and rules on prices and positions fire; the first two marked as
    history (a snapshot), as a worker's warm-up has them."""
    out = []
    for key in keys:
        step, start = key.timeframe.ms, key.timeframe.bucket(_START_MS)
        for i in range(count):
            price = Decimal(100 + (i % 4) * 3 - (i % 3))
            candle = Candle(key, start + i * step, price, price + 1, price - 1, price, Decimal(5))
            out.append(SequencedCandle(candle, seq=i + 1, epoch=1, snapshot=i < 2))
    return out


def _remove(scratch: Path) -> None:
    """Best effort: one that cannot be removed is opened as it is next time (or, if it cannot
    be, that is said then)."""
    for suffix in ("", *SIDE_FILES):
        with contextlib.suppress(OSError):
            Path(f"{scratch}{suffix}").unlink()
