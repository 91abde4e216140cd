"""`qkt notify test [CHANNEL] --config FILE`: one test message through each alert channel.

It reads the `[notify.*]` tables of the daemon's config file (secrets from this environment,
as the daemon would) and prints what each channel's receiver answered; exit 1 if any failed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from qkt.cli.options import JsonOption, StateDirOption, state_dir
from qkt.cli.render import print_json, print_table
from qkt.errors import QktError, UserError

app = typer.Typer(name="notify", help="Alert channels: send a test message.", no_args_is_help=True)


@app.command("test")
def test_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            metavar="FILE",
            help="The daemon's TOML config file (its [notify.*] channels).",
            show_default=False,
        ),
    ],
    channel: Annotated[
        str | None,
        typer.Argument(
            metavar="[CHANNEL]", help="One channel (default: every one).", show_default=False
        ),
    ] = None,
    state: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Send one test message through each channel (or CHANNEL) and print what it answered."""
    from qkt.notify import load_notify_config, run_test  # the CLI stays light without it

    notify = load_notify_config(config, os.environ, state_dir(state).root)
    if not notify.channels:
        raise UserError(f"{config}: no [notify.NAME] channel is configured")
    results = run_test(notify, channel)
    if json:
        print_json(
            [
                {"channel": r.channel, "kind": r.kind, "ok": r.ok, "answer": r.answer}
                for r in results
            ]
        )
    else:
        print_table(
            ["CHANNEL", "KIND", "RESULT", "ANSWER"],
            [[r.channel, r.kind, "ok" if r.ok else "failed", r.answer] for r in results],
        )
    failed = [r.channel for r in results if not r.ok]
    if failed:
        raise QktError(f"the test message did not go through {', '.join(failed)}")
