"""`qkt check FILE...` as a user runs it: a real `python -m qkt` subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import PYTHON, REPO_ROOT

GOLDEN = REPO_ROOT / "tests" / "dsl" / "data"
VALID = (
    "STRATEGY demo VERSION 2\n"
    "SYMBOLS btc = SIM:BTCUSDT EVERY 1m\n"
    "RULES WHEN btc.close > 1 THEN CLOSE btc\n"
)


def qkt(*args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "qkt", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_valid_files_print_one_ok_line_each_and_exit_0() -> None:
    files = sorted((GOLDEN / "valid").glob("*.qkt"))
    result = qkt("check", *files)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(files)
    assert all(
        line.startswith(f"{path}: ok (strategy ") for line, path in zip(lines, files, strict=True)
    )
    example = GOLDEN / "valid" / "dsl_md_example.qkt"
    assert f"{example}: ok (strategy ema_cross v2, 2 streams, 3 rules)" in lines


def test_every_error_is_rendered_on_stderr_with_its_caret_then_the_total(tmp_path: Path) -> None:
    good = tmp_path / "good.qkt"
    good.write_text(VALID)
    bad = tmp_path / "bad.qkt"
    bad.write_text(VALID.replace("CLOSE btc", "ZAP btc") + "WHEN nope.close > 1 THEN CLOSE btc\n")
    result = qkt("check", "good.qkt", "bad.qkt", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == "good.qkt: ok (strategy demo v2, 1 stream, 1 rule)\n"
    assert result.stderr == (
        "bad.qkt:3:31: expected action keyword, got 'ZAP'\n"
        "RULES WHEN btc.close > 1 THEN ZAP btc\n"
        "                              ^\n"
        "bad.qkt:4:6: unknown alias 'nope'\n"
        "WHEN nope.close > 1 THEN CLOSE btc\n"
        "     ^\n"
        "2 errors\n"
    )


def test_the_total_counts_the_errors_of_every_file() -> None:
    files = sorted((GOLDEN / "invalid").glob("*.qkt"))
    expected = sum(len(path.with_suffix(".err").read_text().splitlines()) for path in files)
    result = qkt("check", *files)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == f"{expected} errors"
    assert "Traceback" not in result.stderr


def test_a_missing_file_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    result = qkt("check", "missing.qkt", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "qkt: error: no such file: missing.qkt\n"


def test_check_help_reads_well() -> None:
    result = qkt("check", "--help")
    assert result.returncode == 0
    assert "Usage: qkt check [OPTIONS] [FILE]..." in result.stdout
    assert "Parse and compile .qkt files without running them." in result.stdout
    assert "Exit status: 0 if every file is valid, 1 otherwise." in result.stdout
    top = qkt("--help")
    assert top.returncode == 0
    assert "check" in top.stdout and "Parse and compile .qkt files" in top.stdout


def test_check_without_a_file_is_a_usage_error() -> None:
    result = qkt("check")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_indicators_prints_the_catalog_and_needs_no_file() -> None:
    result = qkt("check", "--list-indicators")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("MACD(x, fastperiod=12, slowperiod=26, signalperiod=9) ") for line in lines
    )
    assert any(
        line.startswith(
            "STOCH(a.candle, fastk_period=5, slowk_period=3, slowd_period=3, MATYPE=SMA) "
        )
        for line in lines
    )
    assert any(line.startswith("SQRT ") for line in lines)
    assert "--list-indicators" in qkt("check", "--help").stdout
