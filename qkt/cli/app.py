"""The typer app: global options and the list of commands (each lives in its own module)."""

from __future__ import annotations

import typer

from qkt.cli import (
    backtest,
    check,
    coerce,
    daemon,
    deploy,
    fetch,
    halt,
    lifecycle,
    listing,
    logs,
    notify,
    run,
    stop,
)
from qkt.cli.options import StateDirOption, VersionOption
from qkt.cli.remote import remember_state

coerce.install()  # typer converts our parameters without pydantic

app = typer.Typer(
    name="qkt",
    help="Docker for trading strategies: host many .qkt strategies on one box, one process each.",
    no_args_is_help=True,
    add_completion=True,
    # Plain help (click's): no rich import on `--help`, no `<bool>` beside every flag.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    version: VersionOption = False,
) -> None:
    """Docker for trading strategies: host many .qkt strategies on one box, one process each."""
    remember_state(ctx, state_dir)


app.command("check")(check.check_command)
app.add_typer(daemon.app, name="daemon")
app.command("deploy")(deploy.deploy_command)
app.command("list")(listing.list_command)
app.command("status")(listing.status_command)
app.command("logs")(logs.logs_command)
app.command("stop")(stop.stop_command)
app.command("restart")(lifecycle.restart_command)
app.command("rm")(lifecycle.rm_command)
halt.register(app)  # halt, resume, kill
app.command("run")(run.run_command)
app.command("backtest")(backtest.backtest_command)
app.command("fetch")(fetch.fetch_command)  # its imports wait inside the command
app.add_typer(notify.app, name="notify")
