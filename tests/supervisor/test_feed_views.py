"""How `qkt list` and `qkt status NAME` show a strategy's keys: stale, warming, per-key history."""

from __future__ import annotations

from qkt.cli.listing import _state
from qkt.cli.statusview import status_lines
from qkt.records import decode
from qkt.supervisor.records import ListEntry

ENTRY = {
    "name": "ema", "pid": 12, "port": 4000, "state": "running", "started_at": None,
    "uptime_ms": 0, "trades": 0, "restarts": 0, "file": "/s/ema.qkt",
    "keys": ["BYBIT:BTCUSDT:1m"], "exit_code": None, "error": None, "restart_in_ms": None,
    "args": {"balance": "10000", "fee_bps": "0", "slippage_bps": "0", "sim": False},
}  # fmt: skip
FEED = {
    "key": "BYBIT:BTCUSDT:1m", "needed": 581, "history": "cold", "candles": 12,
    "missing": 569, "source": "bybit-rest", "reason": "host unreachable", "stale": True,
    "last_candle_age_ms": 95_000,
}  # fmt: skip


def test_the_state_column_says_stale_and_warming() -> None:
    assert _state(decode(ListEntry, ENTRY)) == "running"
    assert _state(decode(ListEntry, {**ENTRY, "stale": True})) == "running (stale)"
    both = decode(ListEntry, {**ENTRY, "stale": True, "warming": "569 of 581 candles missing"})
    assert _state(both) == "running (stale, warming)"


def test_status_shows_each_keys_feed_and_history() -> None:
    warming = "569 of 581 candles missing on BYBIT:BTCUSDT:1m (host unreachable)"
    lines = status_lines({**ENTRY, "stale": True, "warming": warming, "feeds": [FEED]})
    text = "\n".join(lines)
    assert "BYBIT:BTCUSDT:1m: stale (last candle 1m35s ago)" in text
    assert "history cold from bybit-rest, 12 candles, 581 needed" in text
    assert any(line.startswith("warming") and warming in line for line in lines)
    assert not any(line.startswith("feeds") and "{" in line for line in lines)  # not raw JSON
