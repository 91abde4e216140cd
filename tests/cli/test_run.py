"""`qkt run FILE` as a user runs it: a real process with its own hub, status port and journal."""

from __future__ import annotations

import signal
import socket
import subprocess
from decimal import Decimal
from pathlib import Path

from tests.helpers import wait_until
from tests.worker.harness import (
    FLIP,
    SPEED,
    Proc,
    get,
    post,
    qkt_args,
    running,
    sse_events,
    status_when,
)


def _run_args(file: Path, state: Path, *extra: str) -> list[str]:
    return qkt_args("run", file, "--speed", str(SPEED), "--state-dir", state, *extra)


def _port(proc: Proc) -> int:
    return int(proc.line_starting("QKT_PORT=").removeprefix("QKT_PORT="))


def _strategy(tmp_path: Path, text: str = FLIP, name: str = "flip.qkt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_fills_show_on_stdout_and_events_and_status_has_exact_money(tmp_path: Path) -> None:
    file, state = _strategy(tmp_path), tmp_path / "state"
    port_file = tmp_path / "port"
    with running(_run_args(file, state, "--fee-bps", "1.5", "--port-file", str(port_file))) as run:
        port = _port(run)
        assert port_file.read_text().strip() == str(port)
        banner = "\n".join(run.out[:3])
        assert "strategy flip v3 as flip" in banner and "SIM:BTCUSDT:1s" in banner
        assert str(state) in banner
        fill = run.line_starting("20")  # `<ISO time> FILL BUY 0.01 BTCUSDT @ <price> fee ...`
        assert " FILL BUY 0.01 BTCUSDT @ " in fill and " fee " in fill and " realized " in fill
        events = sse_events(port, {"trade"})
        assert any(e["event"] == "trade" for e in events)
        status = status_when(port, lambda s: s["trades"] > 0)
        # Exact decimals: the fee is 1.5 bps of 0.01 x price, not a rounded float.
        last = status["last_trade"]
        assert Decimal(last["fee"]) == Decimal("0.01") * Decimal(last["price"]) * Decimal("0.00015")
        assert Decimal(status["equity"]) == Decimal(status["balance"]) + Decimal(
            status["unrealized"]
        )
        run.signal(signal.SIGINT)
        assert run.wait() == 0
    summary = run.out[-1]
    assert summary.startswith("stopped: ") and " trades, realized " in summary
    assert not port_file.exists()


def test_kill_9_and_restart_keep_the_trade_history(tmp_path: Path) -> None:
    file, state = _strategy(tmp_path), tmp_path / "state"
    with running(_run_args(file, state)) as first:
        port = _port(first)
        before = status_when(port, lambda s: s["trades"] >= 6)["trades"]
        first.popen.kill()  # SIGKILL: no clean stop at all
        first.wait()
    with running(_run_args(file, state)) as second:
        port = _port(second)
        status = status_when(port, lambda s: s["trades"] > before)
        trades = get(port, "/trades", params={"after": 0, "limit": 1000}).json()
        ids = [trade["id"] for trade in trades["trades"]]
        assert ids[:before] == list(range(1, before + 1))  # the first run's fills are still there
        assert trades["total"] >= status["trades"] - 2  # a candle may land between the two reads
        assert any("restored from" in e["message"] for e in _logs(port))
        post(port, "/stop")
        assert second.wait() == 0


def _logs(port: int) -> list[dict[str, str]]:
    events = get(port, "/logs", params={"since": 0, "limit": 1000}).json()["events"]
    return [e for e in events if e["type"] == "log"]


def test_post_stop_gives_exit_0_and_the_summary(tmp_path: Path) -> None:
    file, state = _strategy(tmp_path), tmp_path / "state"
    with running(_run_args(file, state)) as run:
        port = _port(run)
        status_when(port, lambda s: s["trades"] > 0)
        assert post(port, "/stop").status_code == 202
        assert run.wait() == 0
    assert run.out[-1].startswith("stopped: ")


def test_no_observe_serves_no_port(tmp_path: Path) -> None:
    file, state = _strategy(tmp_path), tmp_path / "state"
    with running(_run_args(file, state, "--no-observe")) as run:
        run.line_starting("20")  # trading: a fill line
        assert not any(line.startswith("QKT_PORT=") for line in run.out)
        assert not (state / "strategies" / "flip" / "status.port").exists()
        run.signal(signal.SIGINT)
        assert run.wait() == 0
    assert run.out[-1].startswith("stopped: ")


def test_a_runtime_problem_in_one_rule_is_logged_once_and_the_others_still_trade(
    tmp_path: Path,
) -> None:
    file = _strategy(
        tmp_path,
        "STRATEGY faulty VERSION 1\n"
        "SYMBOLS btc = SIM:BTCUSDT EVERY 1s\n"
        "RULES\n"
        "    WHEN btc.close / (btc.close - btc.close) > 1 THEN BUY btc SIZING 1\n"
        "    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01\n"
        "        BRACKET { STOP LOSS BY ATR(btc.candle, 5000), TAKE PROFIT RR 2 }\n"
        "    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01\n"
        "    WHEN POSITION.btc > 0 THEN CLOSE btc\n",
        "faulty.qkt",
    )
    state = tmp_path / "state"
    with running(_run_args(file, state)) as run:
        port = _port(run)
        status_when(port, lambda s: s["trades"] >= 10 and sum(s["candles"].values()) >= 5)
        post(port, "/stop")
        assert run.wait() == 0
    log = (state / "logs" / "faulty.log").read_text()
    assert log.count("rule 0: division by zero") == 1, log
    warnings = [line for line in log.splitlines() if "rule 1:" in line]
    assert len(warnings) == 1 and "logged once" in warnings[0]
    # Warnings also reach the terminal's stderr, once each.
    assert sum("rule 0: division by zero" in line for line in run.err) == 1


def test_dsl_errors_are_all_printed_and_exit_1(tmp_path: Path) -> None:
    file = _strategy(
        tmp_path,
        "STRATEGY bad VERSION 1\n"
        "SYMBOLS btc = SIM:BTCUSDT EVERY 1s\n"
        "RULES\n"
        "    WHEN ema(btc.close, 3) > 1 THEN BUY btc SIZING 1\n"
        "    WHEN nope.close > 1 THEN BUY btc SIZING 1\n",
        "bad.qkt",
    )
    result = subprocess.run(
        qkt_args("run", file, "--state-dir", tmp_path / "s"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{file}:4:10:" in result.stderr and f"{file}:5:10:" in result.stderr
    assert "2 errors" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_flags_are_one_line_errors(tmp_path: Path) -> None:
    file = _strategy(tmp_path)
    for extra, message in (
        (["--balance", "lots"], "--balance must be a decimal number"),
        (["--as", "no spaces"], "invalid strategy name"),
        (["--speed", "0"], "--speed must be greater than 0"),
    ):
        result = subprocess.run(
            qkt_args("run", file, "--state-dir", tmp_path / "s", *extra),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert result.stderr.startswith("qkt: error: ") and message in result.stderr


def test_a_second_run_of_the_same_name_is_refused(tmp_path: Path) -> None:
    file, state = _strategy(tmp_path), tmp_path / "state"
    with running(_run_args(file, state)) as first:
        port = _port(first)
        second = subprocess.run(_run_args(file, state), capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "qkt: error: strategy 'flip' is already running" in second.stderr
        post(port, "/stop")
        assert first.wait() == 0
    wait_until(lambda: first.popen.poll() is not None)


def test_a_status_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    file = _strategy(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            qkt_args("run", file, "--state-dir", tmp_path / "s", "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"qkt: error: cannot serve the status port on 127.0.0.1:{port}")
