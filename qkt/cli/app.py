"""The typer app: global options and the list of commands (each lives in its own module).

`build(only)` makes the app with every command, or with only the one being run: typer reads
each command's signature when it builds it (evaluating every annotation), and a `qkt list` has
no use for the other dozen. `command_in(args)` says which command a command line runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Final

import typer

from qkt.cli import coerce
from qkt.cli.options import STATE_DIR_FLAG, StateDirOption, VersionOption
from qkt.cli.remote import remember_state

coerce.install()  # typer converts our parameters without pydantic

HELP: Final = (
    "Docker for trading strategies: host many .qkt strategies on one box, one process each."
)
# name -> (module, attribute): a command function, or a Typer of subcommands (`daemon`).
COMMANDS: Final = {
    "check": ("qkt.cli.check", "check_command"),
    "daemon": ("qkt.cli.daemon", "app"),
    "deploy": ("qkt.cli.deploy", "deploy_command"),
    "list": ("qkt.cli.listing", "list_command"),
    "status": ("qkt.cli.listing", "status_command"),
    "logs": ("qkt.cli.logs", "logs_command"),
    "stop": ("qkt.cli.stop", "stop_command"),
    "restart": ("qkt.cli.lifecycle", "restart_command"),
    "rm": ("qkt.cli.lifecycle", "rm_command"),
    "run": ("qkt.cli.run", "run_command"),
    "backtest": ("qkt.cli.backtest", "backtest_command"),
}


def root(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    version: VersionOption = False,
) -> None:
    """Docker for trading strategies: host many .qkt strategies on one box, one process each."""
    remember_state(ctx, state_dir)


def build(only: str | None = None) -> typer.Typer:
    """The `qkt` app with every command, or with `only` that one (same options, same help)."""
    app = typer.Typer(
        name="qkt",
        help=HELP,
        no_args_is_help=True,
        add_completion=True,
        # Plain help (click's): no rich import on `--help`, no `<bool>` beside every flag.
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    for name, (module, attribute) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def command_in(args: Sequence[str]) -> str | None:
    """The command `args` run (`qkt [--state-dir P] NAME ...`); None when it is not plain
    (`qkt --help`, `qkt --version`, a misspelt command): then the whole app answers."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == STATE_DIR_FLAG:
            index += 2
            continue
        if arg.startswith(f"{STATE_DIR_FLAG}="):
            index += 1
            continue
        return arg if arg in COMMANDS else None
    return None
