"""`qkt notify test [CHANNEL]`: one test message through each alert channel, and its answer.

The running daemon sends it through the channels it runs with; with `--config FILE`, qkt reads
that file's `[notify.*]` tables itself (secrets from this environment, as the daemon would),
so a config can be tried before the daemon starts. Exit 1 if any channel failed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from qkt.cli.options import JsonOption, StateDirOption, state_dir
from qkt.cli.remote import connect
from qkt.cli.render import print_json, print_table
from qkt.errors import QktError, UserError
from qkt.supervisor.records import NotifyTestResult

app = typer.Typer(name="notify", help="Alert channels: send a test message.", no_args_is_help=True)


@app.command("test")
def test_command(
    ctx: typer.Context,
    channel: Annotated[
        str | None,
        typer.Argument(
            metavar="[CHANNEL]", help="One channel (default: every one).", show_default=False
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Read the channels from this daemon config file instead of asking the daemon.",
            show_default=False,
        ),
    ] = None,
    state: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Send one test message through each channel (or CHANNEL) and print what it answered."""
    if config is not None:
        results = _from_file(config, channel, state)
    else:
        with connect(ctx, state) as client:
            results = client.notify_test(channel)
    if not results:
        raise UserError("no alert channel is configured ([notify.NAME] in the daemon's config)")
    if json:
        print_json(results)
    else:
        print_table(
            ["CHANNEL", "KIND", "RESULT", "ANSWER"],
            [[r.channel, r.kind, "ok" if r.ok else "failed", r.answer] for r in results],
        )
    failed = [r.channel for r in results if not r.ok]
    if failed:
        raise QktError(f"the test message did not go through {', '.join(failed)}")


def _from_file(config: Path, channel: str | None, state: Path | None) -> list[NotifyTestResult]:
    from qkt.notify import load_notify_config, run_test  # the CLI stays light without it

    notify = load_notify_config(config, os.environ, state_dir(state).root)
    return [NotifyTestResult(r.channel, r.kind, r.ok, r.answer) for r in run_test(notify, channel)]
