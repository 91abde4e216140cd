"""`qkt fetch` against the fake exchange: a CSV `qkt backtest` reads, resumable, one-line errors."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.fakes.bybit_exchange import fake_bybit, walk_rows
from tests.worker.harness import qkt_args

DAY_START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
MINUTE = 60_000


def _qkt(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(qkt_args(*args), capture_output=True, text=True, timeout=120)


def test_fetch_writes_what_backtest_reads_and_a_second_run_appends_nothing(tmp_path: Path) -> None:
    rows = walk_rows(DAY_START, 2 * 1_440)  # two days of 1m candles: three pages a day
    out = tmp_path / "btc.csv"
    with fake_bybit() as fake:
        fake.add_klines("BTCUSDT", rows)
        args = ("fetch", "BYBIT:BTCUSDT:1m", "--from", "2026-01-01", "--to", "2026-01-02")
        first = _qkt(*args, "-o", out, "--rest-url", fake.rest_url)
        assert first.returncode == 0, first.stderr
        assert "2,880 candles of BYBIT:BTCUSDT:1m" in first.stdout
        lines = out.read_text().splitlines()
        assert lines[0] == "timestamp,open,high,low,close,volume"
        assert [tuple(line.split(",")) for line in lines[1:]] == [(str(r[0]), *r[1:]) for r in rows]
        requests = len(fake.rest_requests)

        again = _qkt(*args, "-o", out, "--rest-url", fake.rest_url)
        assert again.returncode == 0, again.stderr
        assert out.read_text().splitlines() == lines  # idempotent
        assert "0 candles" in again.stdout
        assert len(fake.rest_requests) == requests  # nothing left to ask for

        out.write_text("\n".join(lines[:1_001]) + "\n")  # a fetch cut short after 1,000 rows
        resumed = _qkt(*args, "-o", out, "--rest-url", fake.rest_url)
        assert resumed.returncode == 0, resumed.stderr
        assert out.read_text().splitlines() == lines  # resumed after the last row, no repeat

    strategy = tmp_path / "s.qkt"
    strategy.write_text(
        "STRATEGY once VERSION 1\nSYMBOLS btc = BACKTEST:BTCUSDT EVERY 1m\n"
        "RULES WHEN POSITION.btc == 0 THEN BUY btc SIZING 1\n"
    )
    backtest = _qkt("backtest", strategy, "--data", out, "--json")
    assert backtest.returncode == 0, backtest.stderr
    assert '"candles":2880' in backtest.stdout.replace(" ", "")


def test_sim_fetches_offline_and_the_same_range_twice_is_the_same(tmp_path: Path) -> None:
    one, two = tmp_path / "a.csv", tmp_path / "b.csv"
    for path in (one, two):
        done = _qkt("fetch", "SIM:ETHUSDT:1h", "--from", "2026-01-01", "--to", "2026-01-02",
                    "-o", path, "--seed", "5")  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert one.read_text() == two.read_text()
    assert len(one.read_text().splitlines()) == 1 + 48


def test_bad_input_and_unreachable_hosts_are_one_line_errors(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "x.csv"
    cases = {
        ("BYBIT:BTCUSDT", "2026-01-01", "2026-01-02"): "bad candle key",
        ("KRAKEN:BTCUSDT:1m", "2026-01-01", "2026-01-02"): "no history source for broker",
        ("BYBIT:BTCUSDT:1m", "2026-01-05", "2026-01-02"): "must be after --from",
        ("BYBIT:BTCUSDT:1m", "yesterday", "2026-01-02"): "--from takes a date",
        ("BYBIT:BTCUSDT:1m", "2026-01-01", "2026-01-02"): "cannot reach Bybit",
    }
    for (key, start, end), message in cases.items():
        done = _qkt("fetch", key, "--from", start, "--to", end, "-o", out,
                    "--rest-url", f"http://127.0.0.1:{port}", "--retries", "1")  # fmt: skip
        assert done.returncode == 1, (key, done.stderr)
        assert done.stderr.startswith("qkt: error: ") and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
