"""Logs rotate by size and `qkt logs` reads across the rotation boundary; a rule firing on every
candle is one line a minute with its count."""

from __future__ import annotations

import logging
import subprocess
import textwrap
from pathlib import Path

import pytest

from qkt.log import RULE_FIRED, LogRotation, PrivateLogFileHandler, RuleFiringFilter
from tests.helpers import PYTHON, wait_until
from tests.supervisor.daemons import REAL_WORKER, child_env, running_daemon, strategy

MB = 1024 * 1024

# A fast logger, as a worker is set up (`qkt.log.configure`), under a 1 MB x 3 limit.
CHATTY = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from qkt.log import LogRotation, configure
    configure(file=Path(sys.argv[1]), rotation=LogRotation(max_bytes=1024 * 1024, backups=3))
    log = logging.getLogger("qkt.strategy.chatty")
    for n in range(int(sys.argv[2])):
        log.info("line %07d %s", n, "x" * 800)
    """
)


@pytest.mark.slow
def test_a_fast_logger_stays_under_its_limit_and_logs_reads_across(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with running_daemon(root) as daemon:
        log_file = daemon.state.log_file("chatty")
        count = 8_000  # ~6.5 MB of lines: rotates several times
        done = subprocess.run(
            [PYTHON, "-c", CHATTY, str(log_file), str(count)],
            capture_output=True,
            text=True,
            timeout=120,
            env=child_env(),
        )
        assert done.returncode == 0, done.stderr
        files = sorted(daemon.state.logs_dir.glob("chatty.log*"))
        assert [f.name for f in files] == [f"chatty.log{s}" for s in ("", ".1", ".2", ".3")]
        assert sum(f.stat().st_size for f in files) <= 4 * MB
        assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        # More lines than the current file holds: the newest ones, across the boundary.
        current = len(log_file.read_text().splitlines())
        wanted = current + 100
        shown = daemon.cli("logs", "chatty", "--lines", str(wanted))
        assert shown.returncode == 0, shown.stderr
        numbers = [int(line.split("line ")[1].split()[0]) for line in shown.stdout.splitlines()]
        assert numbers == list(range(count - wanted, count))
        grep = daemon.cli("logs", "chatty", "--lines", "3", "--grep", f"line {count - 2000:07d}")
        assert grep.stdout.count("\n") == 1  # found in a rotated file


@pytest.mark.slow
def test_the_daemon_hands_its_rotation_to_workers(tmp_path: Path) -> None:
    """`--log-max-mb` reaches a real worker: a tiny limit makes its start-up lines rotate."""
    args = ("--log-max-mb", "0.0002", "--log-backups", "2", "--speed", "60")
    with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
        path = strategy(tmp_path / "files", "tiny")
        assert daemon.cli("deploy", str(path)).returncode == 0
        logs = daemon.state.logs_dir
        wait_until(lambda: (logs / "tiny.log.1").exists(), timeout=30, what="a rotated log")
        assert not (logs / "tiny.log.3").exists()
        assert (logs / "daemon.log.1").exists()  # the daemon's own log rotates too


def test_a_rule_firing_on_every_candle_is_counted() -> None:
    now = [0.0]
    rules = RuleFiringFilter(clock=lambda: now[0])

    def fired(rule: int) -> logging.LogRecord:
        return logging.LogRecord(
            "qkt.strategy", logging.INFO, "x", 1, RULE_FIRED, (rule, 7, "BUY"), None
        )

    written = []
    for _ in range(315):
        now[0] += 0.1
        record = fired(2)
        if rules.filter(record):
            written.append(record)
    assert len(written) == 1  # the first firing of the minute
    now[0] += 60
    after = fired(2)
    assert rules.filter(after)
    assert after.qkt_repeats == [
        "qkt.strategy: rule 2 (line 7) fired 315 times in the last minute "
        "(1 written, the rest counted)"
    ]
    other = logging.LogRecord("qkt.strategy", logging.INFO, "x", 1, "filled %s", ("x",), None)
    assert rules.filter(other) and not hasattr(other, "qkt_repeats")


def test_rotation_settings_come_from_the_environment() -> None:
    rotation = LogRotation(max_bytes=123, backups=4)
    env: dict[str, str] = {}
    rotation.export(env)
    assert LogRotation.from_env(env) == rotation
    assert LogRotation.from_env({}) == LogRotation()


def test_a_file_rotates_before_a_line_would_take_it_past_its_limit(tmp_path: Path) -> None:
    """Bytes the handler did not write (the worker's own stderr, which shares the file) count
    too: the size is the file's, not a tally of the handler's lines."""
    path = tmp_path / "w.log"
    handler = PrivateLogFileHandler(path, LogRotation(max_bytes=1000, backups=2))
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:

        def line(text: str) -> None:
            handler.emit(logging.LogRecord("w", logging.INFO, "x", 1, text, None, None))

        line("a" * 399)  # 400 bytes with its newline
        with path.open("a") as stderr:
            stderr.write("b" * 499 + "\n")  # 900 bytes now
        line("c" * 99)  # exactly 1,000: still fits
        assert path.stat().st_size == 1000
        assert not (tmp_path / "w.log.1").exists()
        line("d")  # one byte more would pass the limit: rotated first
        assert (tmp_path / "w.log.1").stat().st_size == 1000
        assert path.read_text() == "d\n"
        line("é" * 600)  # 1,201 bytes in UTF-8: too long for any file, written alone
        assert path.read_text() == "é" * 600 + "\n"
        assert (tmp_path / "w.log.1").read_text() == "d\n"
    finally:
        handler.close()
