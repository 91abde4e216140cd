"""Process titles: what `ps`, `top` and `docker top` show for each of qkt's processes.

Every worker would otherwise read `python -m qkt.worker {...a long JSON spec...}`, or, forked
from the fork server, `python -m qkt.supervisor.forkserver qkt.worker 7` like the server itself.
`setproctitle` rewrites the process's argv (what `ps` and `/proc/<pid>/cmdline` show) and, on
Linux, its 15-character `comm` name (what `top` shows by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from setproctitle import setproctitle

FORK_SERVER: Final = "qkt fork-server"


def daemon(state_root: Path) -> str:
    """`qkt daemon <state dir>`: one daemon per state dir, so the folder names it."""
    return f"qkt daemon {state_root}"


def worker(name: str) -> str:
    """`qkt worker <name>`: the strategy's name, as `qkt list` shows it."""
    return f"qkt worker {name}"


def set_title(title: str) -> None:
    """Show this process as `title` in ps/top (call it in the process's entry point only)."""
    setproctitle(title)
