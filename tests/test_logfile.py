"""`held_lines()`: a worker's candle lines made early, written after its commit, or never."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qkt.log import LogRotation, PrivateLogFileHandler, configure, held_lines


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "logs" / "w.log"
    configure(file=path)
    try:
        yield path
    finally:
        configure()  # the root logger without the file again


def _lines(path: Path) -> list[str]:
    return [line.split(": ", 1)[1] for line in path.read_text().splitlines()]


def test_held_lines_are_written_when_the_block_ends_in_order(log_file: Path) -> None:
    log = logging.getLogger("qkt.strategy")
    log.info("before")
    with held_lines():
        log.info("FILL BUY 0.01 S00USDT @ 100")
        log.warning("rule %d fired", 1)
        assert _lines(log_file) == ["before"]
    assert _lines(log_file) == ["before", "FILL BUY 0.01 S00USDT @ 100", "rule 1 fired"]
    log.info("after")  # writes through again
    assert _lines(log_file)[-1] == "after"


def test_a_block_that_fails_writes_none_of_its_lines(log_file: Path) -> None:
    log = logging.getLogger("qkt.strategy")
    with pytest.raises(OSError, match="disk full"), held_lines():
        log.info("FILL BUY 0.01 S00USDT @ 100")
        raise OSError("disk full")  # the journal's commit failing
    log.info("after")
    assert _lines(log_file) == ["after"]


def test_other_threads_lines_are_not_held(log_file: Path) -> None:
    log = logging.getLogger("qkt.status")
    with held_lines():
        log.info("held")
        thread = threading.Thread(target=log.info, args=("from a thread",))
        thread.start()
        thread.join()
        assert _lines(log_file) == ["from a thread"]
    assert _lines(log_file) == ["from a thread", "held"]


def test_a_candles_lines_rotate_together(tmp_path: Path) -> None:
    """The held lines are one write: the file rotates before them, not between them."""
    path = tmp_path / "w.log"
    handler = PrivateLogFileHandler(path, LogRotation(max_bytes=100, backups=2))
    handler.setFormatter(logging.Formatter("%(message)s"))

    def line(text: str) -> None:
        handler.handle(logging.LogRecord("w", logging.INFO, "x", 1, text, None, None))

    try:
        line("a" * 59)  # 60 bytes
        handler.hold()
        line("b" * 29)
        line("c" * 29)  # 60 bytes held: 120 in all, past the limit
        handler.end_hold(write=True)
        assert (tmp_path / "w.log.1").read_text() == "a" * 59 + "\n"
        assert path.read_text() == "b" * 29 + "\n" + "c" * 29 + "\n"
    finally:
        handler.close()
