"""`qkt backtest` applies the deploy's risk limits and buying power (the same flags) and its
summary lists the halts and the rejected orders (docs/risk.md)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from qkt.cli.main import main

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
FLIP = """\
WHEN POSITION.btc == 0 THEN BUY btc SIZING 1
WHEN POSITION.btc > 0 THEN CLOSE btc
"""


def run(tmp_path: Path, rules: str, *flags: str) -> tuple[int, str, str]:
    """`qkt backtest` in this process over 5 days of hourly candles around 100."""
    strategy = tmp_path / "s.qkt"
    strategy.write_text(
        f"STRATEGY r VERSION 1\nSYMBOLS btc = BACKTEST:BTCUSDT EVERY 1h\nRULES\n{rules}"
    )
    data = tmp_path / "BTCUSDT.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(5 * 24):
        price = 100 + (i % 7)
        rows.append(f"{START_MS + i * HOUR_MS},{price},{price + 1},{price - 1},{price},1")
    data.write_text("\n".join(rows) + "\n")
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["backtest", str(strategy), "--data", str(data), *flags])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def summary(tmp_path: Path, rules: str, *flags: str) -> dict[str, Any]:
    code, out, err = run(tmp_path, rules, "--json", *flags)
    assert code == 0, err
    parsed: dict[str, Any] = orjson.loads(out)
    return parsed


def test_a_daily_loss_halts_every_day_and_lifts_at_midnight(tmp_path: Path) -> None:
    # Each round trip pays 2 % of ~100 in fees: a loss of 5 is reached within a few hours.
    result = summary(tmp_path, FLIP, "--fee-bps", "100", "--max-daily-loss", "5")
    halts = result["summary"]["halts"]
    halted = [e for e in halts if e["action"] == "halt"]
    lifts = [e for e in halts if e["action"] == "lift"]
    # One a day; the last candle closes at 00:00 UTC of the sixth day, and lifts the last.
    assert len(halted) == 5 and len(lifts) == 5
    assert all(e["kind"] == "max_daily_loss" and e["by"] == "risk" for e in halted)
    assert all(e["ts"] % DAY_MS == 0 for e in lifts)  # at the first close of a new UTC day
    for halt, lift in zip(halted, lifts, strict=False):
        between = [t for t in result["trades"] if halt["ts"] < t["ts"] < lift["ts"]]
        assert all(t["side"] == "SELL" for t in between), between  # exits only
    assert result["summary"]["rejected"] > 0


def test_no_buying_power_is_a_rejection_never_a_negative_balance(tmp_path: Path) -> None:
    rules = "WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n"
    result = summary(tmp_path, rules, "--balance", "50")
    assert result["trades"] == [] and result["summary"]["equity"] == "50"
    rejections = result["summary"]["rejections"]
    assert rejections and rejections[0]["reason"].startswith("insufficient balance: needs")
    code, out, _ = run(tmp_path, rules, "--balance", "50")
    assert code == 0 and "rejected orders" in out and "insufficient balance" in out
    # `--margin off`: qkt 0.13's unchecked fills, for old backtests.
    unchecked = summary(tmp_path, rules, "--balance", "50", "--margin", "off")
    assert len(unchecked["trades"]) == 1 and unchecked["summary"]["rejected"] == 0


def test_the_summary_names_each_halt(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, FLIP, "--fee-bps", "100", "--max-loss-streak", "2")
    assert code == 0
    assert "halts" in out and "max_loss_streak 2 breached: 2 losing trades in a row" in out


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--max-drawdown-pct", "0", "--max-drawdown-pct: 0 must be a percent above 0"),
        ("--max-daily-loss", "abc", "--max-daily-loss: 'abc' is not an amount of money"),
        ("--max-orders-per-minute", "1000000", "absurdly large"),
        ("--leverage", "0", "--leverage: 0 must be from 1 to 100"),
    ],
)
def test_a_bad_limit_is_one_line(tmp_path: Path, flag: str, value: str, words: str) -> None:
    code, out, err = run(tmp_path, FLIP, flag, value)
    assert code == 1 and out == ""
    assert (
        err.strip().splitlines() == [err.strip()] and words in err and err.startswith("qkt: error:")
    )
