"""What a person reads: tables with cents and right-aligned numbers, `qkt status NAME` in words."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from qkt.cli.render import cell, iso_time, money, price, table
from qkt.cli.statusview import status_lines

TRADE = {
    "id": 7,
    "order_id": 7,
    "ts": 1795561236000,
    "broker": "SIM",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "qty": "0.05",
    "price": "64491.1",
    "fee": "0",
    "realized": "-15.4725",
    "position": "0",
    "role": "CLOSE",
    "rule": 1,
}
RUNNING: dict[str, Any] = {
    "strategy": "ema_cross",
    "version": 1,
    "name": "ema_fast",
    "pid": 4242,
    "state": "running",
    "started_at": "2026-11-24T22:58:01.146Z",
    "uptime_ms": 192_000,
    "file": "/strategies/ema_cross.qkt",
    "start_balance": "10000",
    "balance": "9984.5275",
    "equity": "10012.205",
    "realized": "-15.4725",
    "unrealized": "27.6775",
    "total_pnl": "12.205",
    "fees": "3.215",
    "positions": [
        {
            "broker": "SIM",
            "symbol": "ETHUSDT",
            "qty": "-1.5",
            "avg_price": "3201.4",
            "mark": "3182.949",
            "unrealized": "27.6775",
        }
    ],
    "open_orders": [
        {
            "id": 12,
            "broker": "SIM",
            "symbol": "ETHUSDT",
            "side": "BUY",
            "kind": "STOP",
            "qty": "1.5",
            "tif": "GTC",
            "role": "STOP_LOSS",
            "created_ms": 1795561236000,
            "rule": 2,
            "limit": None,
            "stop": "3300",
            "trail": None,
            "anchor": None,
            "triggered": False,
            "expires_ms": None,
            "group": None,
            "parent": 11,
            "exits": None,
            "status": "OPEN",
        }
    ],
    "trades": 7,
    "last_trade": TRADE,
    "keys": ["SIM:BTCUSDT:1m", "SIM:ETHUSDT:1m"],
    "last_candle_ts": {"SIM:BTCUSDT:1m": 1795561200000, "SIM:ETHUSDT:1m": 1795561200000},
    "warm": True,
    "candles": {"SIM:BTCUSDT:1m": 517, "SIM:ETHUSDT:1m": 516},
    "warmup_candles": 200,
    "indicators": {"EMA(btc.close, 12)": "64380.12", "RSI(eth.close, 14)": None},
    "fee_bps": "7",
    "slippage_bps": "0",
    "fill_at": "next_open",
    "sim": False,
    "subscriber": {
        "delivered": 1033,
        "duplicates": 0,
        "buffered": 0,
        "repaired": 1,
        "missed": 2,
        "malformed": 0,
    },
    "events": {"last_id": 597, "subscribers": 1, "dropped": 0},
    "restarts": 1,
    "port": 45245,
    "from_a_newer_worker": {"depth": 3, "venues": ["SIM", "BYBIT"]},
}
CRASHED: dict[str, Any] = {
    "name": "ema_fast",
    "pid": None,
    "port": None,
    "state": "crashed",
    "started_at": "2026-11-24T22:58:01.146Z",
    "uptime_ms": 0,
    "trades": 7,
    "restarts": 5,
    "file": "/strategies/ema_cross.qkt",
    "keys": ["SIM:BTCUSDT:1m"],
    "exit_code": -9,
    "error": "killed by SIGKILL; crashed 6 times, more than the restart policy allows",
    "restart_in_ms": None,
    "args": {"balance": "2500.5", "fee_bps": "7", "slippage_bps": "1.5", "sim": True},
    "gave_up": True,
    "last_log": ["2026-11-24T22:58:01.146Z INFO  qkt.worker: one", "Traceback (most recent...)"],
}


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("10124.8578123025", "10124.86"),
        ("-12.7200615173", "-12.72"),
        ("0.125", "0.12"),  # half-even: to the even cent
        ("0.135", "0.14"),
        ("-0.004", "0.00"),  # never "-0.00"
        ("1000000000000000", "1000000000000000.00"),  # no thousands separators, no exponent
        ("1E+3", "1000.00"),
        ("0", "0.00"),
    ],
)
def test_money_reads_in_cents_half_even(text: str, cents: str) -> None:
    assert cell(money(text)) == cents


@pytest.mark.parametrize(
    ("text", "shown"),
    [("64491.1", "64491.10"), ("0.0812345", "0.081234"), ("0.5", "0.50"), ("0.005", "0.005")],
)
def test_prices_under_one_keep_the_decimals_they_need(text: str, shown: str) -> None:
    assert cell(price(text)) == shown


@pytest.mark.parametrize("nothing", [None, "abc", "NaN", True])
def test_what_is_not_money_prints_as_a_dash(nothing: Any) -> None:
    assert cell(money(nothing)) == "-" and cell(price(nothing)) == "-"


def test_numbers_align_right_and_words_left() -> None:
    text = table(
        ["NAME", "TRADES", "EQUITY", "UPTIME", "STATE"],
        [
            ["a", 3, Decimal("10.50"), "4m01s", "running"],
            ["bbbb", 1234, Decimal("-1234.57"), "12h03m", "crashed"],
            ["c", None, None, None, None],
        ],
        right={"UPTIME"},
    )
    assert text.splitlines() == [
        "NAME  TRADES    EQUITY  UPTIME  STATE",
        "a          3     10.50   4m01s  running",
        "bbbb    1234  -1234.57  12h03m  crashed",
        "c          -         -       -  -",
    ]


def test_times_read_as_iso_utc() -> None:
    assert iso_time(1795561236000) == "2026-11-24T23:00:36Z"
    assert iso_time(None) == "-" and iso_time("soon") == "-"


def test_a_running_strategy_reads_in_short_lines() -> None:
    lines = status_lines(RUNNING)
    text = "\n".join(lines)
    assert "{" not in text and "}" not in text  # no raw JSON anywhere
    expected = {
        "name": "ema_fast (strategy ema_cross v1)",
        "state": "running, up 3m12s, 1 restart",
        "process": "pid 4242, status port 45245",
        "started": "2026-11-24T22:58:01Z",
        "file": "/strategies/ema_cross.qkt",
        "equity": "10012.20 (balance 9984.53, start 10000.00)",  # .205 half-even
        "pnl": "total 12.20: realized -15.47, unrealized 27.68, fees 3.22",
        "trades": "7",
        "last trade": "SELL 0.05 BTCUSDT @ 64491.10 (realized -15.47) 2026-11-24T23:00:36Z",
        "positions": "ETHUSDT short 1.5 @ 3201.40, mark 3182.95, unrealized 27.68",
        "open orders": "#12 BUY 1.5 ETHUSDT STOP stop 3300.00 (STOP_LOSS, GTC)",
        "streams": "SIM:BTCUSDT:1m: 517 candles, last 2026-11-24T23:00:00Z",
        "warm": "yes (200 warm-up candles)",
        "indicators": "EMA(btc.close, 12) = 64380.12",
        "paper": "fee 7 bps, slippage 0 bps, fills at next open",
        "hub": "1033 delivered, 0 duplicates, 0 buffered, 1 repaired, 2 missed, 0 malformed",
        "events": "last id 597, 1 live readers, 0 dropped",
        "from a newer worker": "depth 3, venues [SIM, BYBIT]",
    }
    width = len("from a newer worker")  # the longest label sets the value column
    found = {line[:width].strip(): line[width + 2 :] for line in lines if line[:width].strip()}
    assert found == expected
    # The second stream continues under the first, in the value column.
    second = lines[lines.index(f"{'streams'.ljust(width)}  {expected['streams']}") + 1]
    assert second == " " * (width + 2) + "SIM:ETHUSDT:1m: 516 candles, last 2026-11-24T23:00:00Z"
    rsi = lines[lines.index(f"{'indicators'.ljust(width)}  {expected['indicators']}") + 1]
    assert rsi == " " * (width + 2) + "RSI(eth.close, 14) = not warm"


def test_a_crashed_strategy_says_why_and_shows_its_last_lines() -> None:
    lines = status_lines(CRASHED)
    assert lines[0].split() == ["name", "ema_fast"]
    assert lines[1].split(None, 1) == ["state", "crashed, 5 restarts"]
    text = "\n".join(lines)
    assert "exit code  -9" in text
    assert "restart    no: gave up" in text
    assert "paper      balance 2500.50, fee 7 bps, slippage 1.5 bps, every stream on the" in text
    assert "{" not in text
    assert lines[-3:] == [
        "last log",
        "  2026-11-24T22:58:01.146Z INFO  qkt.worker: one",
        "  Traceback (most recent...)",
    ]
