"""`qkt backtest` figures a researcher can trust (issue 18): a wiped-out account, data checks
that name the place, output that leads with the summary, and parameter sweeps."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.worker.harness import qkt_args

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
HEADER = "timestamp,open,high,low,close,volume\n"


def _hours(closes: list[float], start: int = T0, skip: frozenset[int] = frozenset()) -> str:
    rows = [HEADER]
    previous = closes[0]
    for i, close in enumerate(closes):
        if i not in skip:
            low, high = min(previous, close), max(previous, close)
            rows.append(f"{start + i * HOUR},{previous},{high},{low},{close},1\n")
        previous = close
    return "".join(rows)


def _qkt(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(qkt_args(*args), capture_output=True, text=True, timeout=120)


def _json(*args: str | Path) -> dict[str, Any]:
    result = _qkt(*args, "--json")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = orjson.loads(result.stdout)
    return parsed


def _strategy(tmp_path: Path, rules: str, symbols: str = "btc = BACKTEST:BTCUSDT EVERY 1h") -> Path:
    path = tmp_path / "s.qkt"
    path.write_text(f"STRATEGY t VERSION 1\nSYMBOLS {symbols}\nRULES\n{rules}")
    return path


def test_a_wiped_out_account_says_when_and_has_no_return_ratios(tmp_path: Path) -> None:
    """The reproduction: with equity below zero the summary once reported a Sharpe of +5.58,
    returns being divided by negative equity. A short of 90 at 100 (within the balance) and a
    rise to 300 lose 18,000 of 10,000."""
    closes = [100.0, 100.0, 120.0, 150.0, 190.0, 230.0, 260.0, 300.0, 280.0, 290.0] * 1
    closes += [300.0 + i for i in range(40)]  # more days, so that a Sharpe would be defined
    data = tmp_path / "BTCUSDT.csv"
    data.write_text(_hours(closes))
    strategy = _strategy(tmp_path, "WHEN POSITION.btc == 0 THEN SELL btc SIZING 90\n")
    # A spot short needs `--margin off` since buying power (docs/risk.md): qkt 0.13's fills.
    summary = _json("backtest", strategy, "--data", data, "--margin", "off")["summary"]
    # equity = 10000 - 90 * (close - 100) <= 0 from close 211.11 on: the 230 candle (index 5).
    assert summary["wiped_out"] is True
    assert summary["wiped_out_ts"] == T0 + 6 * HOUR
    for name in ("sharpe", "sortino", "cagr", "calmar", "total_return"):
        assert summary[name] is None
        assert "wiped out" in summary["undefined"][name]
    assert Decimal(summary["equity"]) < 0
    assert summary["max_drawdown_fraction"] == "1"  # a fraction of the peak, never above 1
    human = _qkt("backtest", strategy, "--data", data, "--margin", "off")
    assert human.returncode == 0, human.stderr
    assert "WIPED OUT" in human.stdout and "equity <= 0 at 2026-01-01T06:00:00Z" in human.stdout
    assert "n/a (the account was wiped out" in human.stdout


def test_the_summary_comes_first_and_trades_are_limited(tmp_path: Path) -> None:
    closes = [100.0 + (i % 7) for i in range(200)]
    data = tmp_path / "BTCUSDT.csv"
    data.write_text(_hours(closes))
    strategy = _strategy(
        tmp_path,
        "WHEN POSITION.btc == 0 THEN BUY btc SIZING 1.5\nWHEN POSITION.btc > 0 THEN CLOSE btc\n",
    )
    result = _qkt("backtest", strategy, "--data", data, "--fee-bps", "7")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("total return") < out.index("first 20 of 400 trades")
    assert out.count(" BTCUSDT ") == 20
    # Money for reading: cents, thousands separated (the exact figures are in --json).
    assert "10,000.00" in out
    everything = _qkt("backtest", strategy, "--data", data, "--trades", "all")
    assert "400 trades" in everything.stdout and everything.stdout.count(" BTCUSDT ") == 400
    none = _qkt("backtest", strategy, "--data", data, "--trades", "0")
    assert " BTCUSDT " not in none.stdout and "total return" in none.stdout
    bad = _qkt("backtest", strategy, "--data", data, "--trades", "many")
    assert bad.returncode == 1 and "--trades takes a number of rows or 'all'" in bad.stderr
    # --json keeps spec.md's fields and meanings and adds the others.
    report = _json("backtest", strategy, "--data", data, "--fee-bps", "7")
    assert len(report["trades"]) == 400  # both rules fire on every candle
    summary = report["summary"]
    for name in ("trades", "realized", "unrealized", "total_pnl", "equity", "max_drawdown"):
        assert isinstance(summary[name], (str, int))
    assert summary["win_rate"] is not None and summary["sharpe"] is not None
    assert Decimal(summary["fees"]) > 0


def test_one_csv_for_two_symbols_is_an_error_unless_mapped(tmp_path: Path) -> None:
    (tmp_path / "btc.csv").write_text(_hours([100.0 + i for i in range(30)]))
    (tmp_path / "eth.csv").write_text(_hours([50.0 + i for i in range(30)]))
    strategy = _strategy(
        tmp_path,
        "WHEN POSITION.eth == 0 THEN BUY eth SIZING 1\n",
        symbols="btc = BACKTEST:BTCUSDT EVERY 1h, eth = BACKTEST:ETHUSDT EVERY 1h",
    )
    result = _qkt("backtest", strategy, "--data", tmp_path / "btc.csv")
    assert result.returncode == 1
    assert "is one file, but the strategy trades BTCUSDT, ETHUSDT" in result.stderr
    assert "--data BTCUSDT=btcusdt.csv --data ETHUSDT=ethusdt.csv" in result.stderr
    mapped = _json(
        "backtest",
        strategy,
        "--data",
        f"BTCUSDT={tmp_path / 'btc.csv'}",
        "--data",
        f"ETHUSDT={tmp_path / 'eth.csv'}",
    )
    assert mapped["trades"][0]["symbol"] == "ETHUSDT"
    assert mapped["trades"][0]["price"] == "50"  # ETH's own first close, not BTC's


def test_a_window_outside_the_data_is_an_error_stating_its_span(tmp_path: Path) -> None:
    data = tmp_path / "BTCUSDT.csv"
    data.write_text(_hours([100.0 + i for i in range(48)]))
    strategy = _strategy(tmp_path, "WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n")
    result = _qkt("backtest", strategy, "--data", data, "--from", "2027-03-01")
    assert result.returncode == 1
    assert result.stderr == (
        "qkt: error: --from/--to (2027-03-01T00:00:00Z .. end) select no candle: the data spans"
        " BTCUSDT 2026-01-01T00:00:00Z .. 2026-01-02T23:00:00Z\n"
    )


def test_epoch_seconds_work_and_gaps_are_reported(tmp_path: Path) -> None:
    closes = [100.0 + i for i in range(60)]
    text = _hours(closes, skip=frozenset({10, 11, 12, 30}))
    # Epoch seconds instead of ms: once "candles 60 ms apart are not a whole number of seconds".
    rows = [text.splitlines()[0]] + [
        f"{int(line.split(',')[0]) // 1000},{line.split(',', 1)[1]}"
        for line in text.splitlines()[1:]
    ]
    data = tmp_path / "BTCUSDT.csv"
    data.write_text("\n".join(rows) + "\n")
    strategy = _strategy(tmp_path, "WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n")
    summary = _json("backtest", strategy, "--data", data)["summary"]
    # Default --gap 1: the three missing hours are reported, the single one is not.
    assert summary["gaps"] == [{"symbol": "BTCUSDT", "after_ts": T0 + 9 * HOUR, "missing": 3}]
    every = _json("backtest", strategy, "--data", data, "--gap", "0")["summary"]["gaps"]
    assert [gap["missing"] for gap in every] == [3, 1]
    human = _qkt("backtest", strategy, "--data", data)
    assert "data gaps" in human.stdout and "3 BTCUSDT candles after 2026-01-01T09:00:00Z" in (
        human.stdout
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"{T0 + 5 * HOUR},1,1,-100,1,1", ":7:19: low: prices must be > 0, got -100"),
        (
            f"{T0 + 5 * HOUR},1,1",
            ":7: short row: 3 fields, no low,close,volume"
            " (header: timestamp,open,high,low,close,volume)",
        ),
    ],
)
def test_bad_rows_are_one_line_with_file_line_and_column(
    tmp_path: Path, row: str, message: str
) -> None:
    data = tmp_path / "BTCUSDT.csv"
    data.write_text(_hours([100.0 + i for i in range(5)]) + row + "\n")
    strategy = _strategy(tmp_path, "WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n")
    result = _qkt("backtest", strategy, "--data", data)
    assert result.returncode == 1
    assert result.stderr == f"qkt: error: {data}{message}\n"


def test_a_sweep_runs_every_combination_ranked(tmp_path: Path) -> None:
    import math

    closes = [100 + 10 * math.sin(i / 6) + i * 0.05 for i in range(400)]
    data = tmp_path / "BTCUSDT.csv"
    data.write_text(_hours([round(c, 2) for c in closes]))
    rules = (
        "LET fast = 3, slow = 10\nRULES\n"
        "WHEN EMA(btc.close, fast) CROSSES ABOVE EMA(btc.close, slow) AND POSITION.btc == 0\n"
        "THEN BUY btc SIZING 1\n"
        "WHEN EMA(btc.close, fast) CROSSES BELOW EMA(btc.close, slow) THEN CLOSE btc\n"
    )
    strategy = tmp_path / "s.qkt"
    strategy.write_text(f"STRATEGY t VERSION 1\nSYMBOLS btc = BACKTEST:BTCUSDT EVERY 1h\n{rules}")
    sweep = _json(
        "backtest", strategy, "--data", data, "--param", "fast=2..6:2", "--param", "slow=12,20",
        "--rank", "total_return",
    )  # fmt: skip
    runs = sweep["runs"]
    assert sweep["rank"] == "total_return"
    assert sorted((r["params"]["fast"], r["params"]["slow"]) for r in runs) == sorted(
        (f, s) for f in ("2", "4", "6") for s in ("12", "20")
    )
    returns = [r["summary"]["total_return"] for r in runs]
    assert returns == sorted(returns, reverse=True)
    # A run of the sweep is the same backtest as the file with that LET written in by hand.
    best = runs[0]
    by_hand = tmp_path / "by_hand.qkt"
    by_hand.write_text(
        strategy.read_text().replace(
            "LET fast = 3, slow = 10",
            f"LET fast = {best['params']['fast']}, slow = {best['params']['slow']}",
        )
    )
    assert _json("backtest", by_hand, "--data", data)["summary"] == best["summary"]
    human = _qkt("backtest", strategy, "--data", data, "--param", "fast=2,3")
    assert human.returncode == 0, human.stderr
    assert "2 runs, best sharpe first" in human.stdout
    unknown = _qkt("backtest", strategy, "--data", data, "--param", "fats=2,3")
    assert unknown.returncode == 1
    assert "--param fats: no LET of that name" in unknown.stderr and "LETs: fast, slow" in (
        unknown.stderr
    )


def test_a_terminal_sees_progress_with_percentage_and_eta(tmp_path: Path) -> None:
    import os
    import pty

    data = tmp_path / "BTCUSDT.csv"
    data.write_text(_hours([100.0 + (i % 5) for i in range(3000)]))
    strategy = _strategy(tmp_path, "WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n")
    master, slave = pty.openpty()  # stderr is a terminal, stdout a pipe
    process = subprocess.Popen(
        qkt_args("backtest", strategy, "--data", data),
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "COLUMNS": "160", "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    stdout, _ = process.communicate(timeout=120)
    os.close(master)
    shown = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0
    assert "100%" in shown and "ETA" in shown and "3,000 candles" in shown
    assert b"total return" in stdout  # the summary itself stays on stdout
