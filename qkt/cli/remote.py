"""The state dir a command means (`--state-dir` on the command or on `qkt`), and its daemon."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from qkt.cli.options import state_dir
from qkt.paths import StateDir

if TYPE_CHECKING:
    from qkt.control.client import ControlClient

STATE_KEY = "state_dir"


def resolve_state(ctx: typer.Context, value: Path | None) -> StateDir:
    """This command's `--state-dir` if typed, else the nearest parent's, else env / default."""
    typed = _typed(ctx)
    if value is not None and typed:
        return state_dir(value)
    parent = ctx.parent
    while parent is not None:
        found = (parent.obj or {}).get(STATE_KEY) if isinstance(parent.obj, dict) else None
        if found is not None:
            return state_dir(found)
        parent = parent.parent
    return state_dir(value)


def remember_state(ctx: typer.Context, value: Path | None) -> None:
    """Keep a group's typed `--state-dir` for its subcommands."""
    typed = _typed(ctx)
    ctx.obj = {STATE_KEY: value if typed else None}


def connect(ctx: typer.Context, value: Path | None) -> ControlClient:
    """A client for the daemon of the state dir meant; NoDaemonError if none answers."""
    from qkt.control.client import ControlClient  # only for commands that talk to a daemon

    return ControlClient.connect(resolve_state(ctx, value))


def _typed(ctx: typer.Context) -> bool:
    """True if `--state-dir` was typed on this command (not taken from the environment)."""
    source = ctx.get_parameter_source(STATE_KEY)
    return source is not None and source.name == "COMMANDLINE"
