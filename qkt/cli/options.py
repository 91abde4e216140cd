"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer

from qkt import __version__
from qkt.paths import ENV_STATE_DIR, StateDir

STATE_DIR_FLAG: Final = "--state-dir"

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        STATE_DIR_FLAG,
        metavar="PATH",
        envvar=ENV_STATE_DIR,
        help="State folder of the daemon (default: the platform's user state dir).",
        show_default=False,
    ),
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only, for scripts.")]


def print_version(value: bool) -> None:
    """Eager `--version` callback: print `qkt X.Y.Z` and exit before anything else runs."""
    if value:
        typer.echo(f"qkt {__version__}")
        raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option(
        "--version", callback=print_version, is_eager=True, help="Print the version and exit."
    ),
]


def state_dir(explicit: Path | None) -> StateDir:
    """The state folder named by `--state-dir`, `$QKT_STATE_DIR` or the platform default."""
    return StateDir.resolve(explicit)
