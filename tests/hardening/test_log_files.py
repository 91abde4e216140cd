"""Defect 13 (logs reopened on rotation) and the log side of defect 2 (a flood of one line).

Before: after `mv` of a worker's log the worker kept writing to the moved file, and 19,990 accept
errors wrote 347 MB of identical tracebacks to daemon.log in 2 minutes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from qkt.hub import HubEndpoints
from qkt.log import LINE_FORMAT, RepeatFilter, UtcIsoFormatter
from qkt.worker.spec import WorkerSpec
from tests.helpers import wait_until
from tests.worker.harness import FLIP, FLIP_KEY, hub_process, running, worker_args


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubEndpoints]:
    with hub_process(tmp_path_factory.mktemp("hub"), [FLIP_KEY]) as endpoints:
        yield endpoints


def test_a_worker_writes_to_the_new_log_after_mv(tmp_path: Path, hub: HubEndpoints) -> None:
    strategy = tmp_path / "flip.qkt"
    strategy.write_text(FLIP)
    spec = WorkerSpec(
        name="flip",
        file=str(strategy),
        source=FLIP,
        state_dir=str(tmp_path / "state"),
        hub_pub=hub.pub,
        hub_snapshot=hub.snapshot,
    )
    with running(worker_args(spec.to_json())):
        wait_until(lambda: "FILL" in spec.log_file.read_text(), 30, what="a first fill")
        rotated = spec.log_file.with_name("flip.log.1")
        spec.log_file.rename(rotated)
        wait_until(
            lambda: spec.log_file.exists() and "FILL" in spec.log_file.read_text(),
            30,
            what="fills in a new flip.log",
        )
        size = rotated.stat().st_size
        wait_until(lambda: spec.log_file.read_text().count("FILL") >= 3, 30, what="more fills")
    # The old file got nothing after the move (beyond what was in flight at that moment).
    assert rotated.stat().st_size == size
    assert spec.log_file.stat().st_mode & 0o777 == 0o600


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def flood_logger(clock: FakeClock) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(UtcIsoFormatter(LINE_FORMAT))
    handler.addFilter(RepeatFilter(window=10.0, burst=3, clock=clock))
    logger = logging.getLogger(f"qkt.test.flood.{id(out)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, out


def test_a_line_repeated_in_a_flood_is_written_a_few_times_then_counted() -> None:
    clock = FakeClock()
    logger, out = flood_logger(clock)
    for _ in range(10_000):
        logger.error("accept failed: Too many open files")
        clock.now += 0.0001  # 10,000 lines in one second
    logger.error("something else")  # another line still passes at once
    assert out.getvalue().count("accept failed") == 3
    assert "something else" in out.getvalue()

    clock.now += 10  # the window is over: the next line carries the count
    logger.info("later")
    lines = out.getvalue().splitlines()
    assert lines[-1].endswith("later")
    assert "'accept failed: Too many open files' repeated 9997 more times" in lines[-2]
    # A new window: the line is written again.
    logger.error("accept failed: Too many open files")
    assert out.getvalue().splitlines()[-1].endswith("accept failed: Too many open files")


def test_lines_that_differ_are_all_written() -> None:
    clock = FakeClock()
    logger, out = flood_logger(clock)
    for i in range(100):
        logger.info("fill %d", i)
    assert len(out.getvalue().splitlines()) == 100
