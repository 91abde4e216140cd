"""`qkt logs NAME [-f]`: a strategy's log file, through the daemon."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from qkt.cli.options import StateDirOption

DAEMON_LOG = "daemon"


def logs_command(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="The strategy, or `daemon` for the daemon's own log.",
            show_default=False,
        ),
    ],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TS",
            help="Only lines since TS: ISO time "
            "(2026-05-08T15:02:14Z), epoch seconds/ms, or an age (10m, 2h).",
            show_default=False,
        ),
    ] = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="How many of the last lines.")
    ] = 200,
    grep: Annotated[
        str | None,
        typer.Option(
            "--grep", metavar="TEXT", help="Only lines containing TEXT.", show_default=False
        ),
    ] = None,
    state_dir: StateDirOption = None,
) -> None:
    """Print the last lines of NAME's log (or the daemon's: `qkt logs daemon`); with -f,
    stream new ones until Ctrl-C. Rotated files (NAME.log.1, ...) are read too."""
    from qkt.cli.remote import connect
    from qkt.paths import check_name

    if name != DAEMON_LOG:
        check_name(name)
    with connect(ctx, state_dir) as client:
        if not follow:
            sys.stdout.write(client.logs(name, lines, since, grep))
            return
        out = sys.stdout.buffer
        try:
            for chunk in client.follow_logs(name, lines, since, grep):
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how -f ends: not an error
