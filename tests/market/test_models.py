"""The market records' shortcuts: a key's hash taken once, a candle built slot by slot."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from decimal import Decimal

from qkt.market.models import Candle, CandleKey, Timeframe, candle_of

KEY = CandleKey.parse("BYBIT:BTCUSDT:1m")


def test_a_key_hashes_and_compares_by_its_three_fields() -> None:
    same = CandleKey("BYBIT", "BTCUSDT", Timeframe.parse("1m"))
    assert same == KEY and hash(same) == hash(KEY) and {KEY: 1}[same] == 1
    assert dataclasses.replace(KEY, symbol="ETHUSDT") == CandleKey.parse("BYBIT:ETHUSDT:1m")
    assert hash(dataclasses.replace(KEY, symbol="ETHUSDT")) != hash(KEY)
    assert sorted([CandleKey.parse("A:B:1m"), CandleKey.parse("A:A:1m")])[0].symbol == "A"
    assert repr(KEY) == (
        "CandleKey(broker='BYBIT', symbol='BTCUSDT', timeframe=Timeframe(ms=60000, text='1m'))"
    )


def test_a_pickled_key_finds_its_entry_in_a_process_with_another_hash_seed() -> None:
    # The cached hash must not travel: a str's hash differs between processes (a sweep's pool
    # may be spawned), and a stale one would miss every lookup there.
    script = (
        "import pickle, sys\n"
        "from qkt.market.models import CandleKey\n"
        "key = pickle.loads(sys.stdin.buffer.read())\n"
        "print({CandleKey.parse('BYBIT:BTCUSDT:1m'): 'found'}.get(key, 'missed'))\n"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            input=pickle.dumps(KEY),
            capture_output=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        assert out.stdout.decode().strip() == "found", out.stderr.decode()


def test_candle_of_builds_the_same_candle_as_the_constructor() -> None:
    values = (
        KEY,
        60_000,
        Decimal("1.50"),
        Decimal("2"),
        Decimal("0.5"),
        Decimal("1.75"),
        Decimal("3E+2"),
    )
    built, constructed = candle_of(*values), Candle(*values)
    assert built == constructed and repr(built) == repr(constructed)
    # Every field set, in order: a field added to Candle and not to candle_of fails here.
    assert [f.name for f in dataclasses.fields(Candle)] == list(Candle.__slots__)
    assert dataclasses.astuple(built) == dataclasses.astuple(constructed)
    assert built.end_ms == 120_000
