"""One log format for the daemon and every worker: `2026-05-08T15:02:14.234Z INFO  name: msg`."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Final, TextIO

LINE_FORMAT: Final = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"


def iso_utc(epoch_ms: int, *, millis: bool = True) -> str:
    """`2026-05-08T15:02:14.234Z` (or `...:14Z` without `millis`): the one way qkt writes a time
    for people, in logs, status answers and tables, whatever the machine's zone."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_ms // 1000))
    return f"{stamp}.{epoch_ms % 1000:03d}Z" if millis else f"{stamp}Z"


class UtcIsoFormatter(logging.Formatter):
    """Log lines stamped with `iso_utc`."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_utc(int(record.created * 1000))


def configure(
    *, file: Path | None = None, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """Route the root logger to `file` and/or `stream`, replacing earlier handlers.

    A worker calls this after fork/spawn with only its own file, so that each strategy's log holds
    only its own lines (the OS separates them, not a filter).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = UtcIsoFormatter(LINE_FORMAT)
    handlers: list[logging.Handler] = []
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    if stream is not None:
        handlers.append(logging.StreamHandler(stream))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's access log would drown the strategy's own lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
