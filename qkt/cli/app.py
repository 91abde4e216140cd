"""The typer app: global options and the list of commands (each lives in its own module).

`build()` makes the app whose commands are built when they are used: typer reads each command's
signature when it builds it (evaluating every annotation) and a command's module may import a
lot (the engine, rich), and a `qkt list` or a `qkt --help` has no use for the other dozen.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Final

import typer
from typer import _click as click
from typer.core import TyperGroup

from qkt.cli import coerce
from qkt.cli.options import StateDirOption, VersionOption
from qkt.cli.remote import remember_state

coerce.install()  # typer converts our parameters without pydantic

HELP: Final = (
    "Docker for trading strategies: host many .qkt strategies on one box, one process each."
)
# name -> (module, attribute, the first sentence of its help): a command function, or a Typer of
# subcommands (`daemon`). `qkt --help` prints the sentences from here, without importing a
# command's module; tests/cli/test_help_and_completion.py holds them equal to the docstrings.
COMMANDS: Final = {
    "check": (
        "qkt.cli.check",
        "check_command",
        "Parse and compile .qkt files without running them.",
    ),
    "deploy": (
        "qkt.cli.deploy",
        "deploy_command",
        "Compile FILE and start it as NAME; prints NAME PORT STATE STARTED once it is running.",
    ),
    "list": (
        "qkt.cli.listing",
        "list_command",
        "NAME UPTIME PORT TRADES STATE PID RESTARTS of every deployed strategy.",
    ),
    "status": (
        "qkt.cli.listing",
        "status_command",
        "One strategy's /status, or a roll-up table of every strategy.",
    ),
    "logs": (
        "qkt.cli.logs",
        "logs_command",
        "Print the last lines of NAME's log (or the daemon's: `qkt logs daemon`); with -f, "
        "stream new ones until Ctrl-C.",
    ),
    "stop": (
        "qkt.cli.stop",
        "stop_command",
        "Stop NAME (or --all) gracefully (SIGTERM, or a flatten-then-stop), SIGKILL after "
        "--timeout.",
    ),
    "restart": (
        "qkt.cli.lifecycle",
        "restart_command",
        "Stop NAME (or --all) gracefully and start the same deployment again.",
    ),
    "rm": (
        "qkt.cli.lifecycle",
        "rm_command",
        "Forget a stopped strategy: its journal and logs move to <state>/archive/ (or, with "
        "--purge, are deleted) and it leaves `qkt list -a`.",
    ),
    "run": (
        "qkt.cli.run",
        "run_command",
        "Run one strategy in the foreground, without a daemon; Ctrl-C stops it cleanly.",
    ),
    "backtest": (
        "qkt.cli.backtest",
        "backtest_command",
        "Replay history through the strategy and print a summary and the trade list.",
    ),
    "fetch": (
        "qkt.cli.fetch",
        "fetch_command",
        "Download closed candles of KEY between two dates into a candle CSV.",
    ),
    "halt": (
        "qkt.cli.halt",
        "halt_command",
        "No new entries for NAME (or --all); exits (CLOSE, brackets, stops) still run.",
    ),
    "resume": (
        "qkt.cli.halt",
        "resume_command",
        "Lift the halt of NAME (or of every halted strategy with --all).",
    ),
    "kill": (
        "qkt.cli.halt",
        "kill_command",
        "Halt NAME (or --all), cancel every order, with --flatten close every position.",
    ),
    "notify": ("qkt.cli.notify", "app", "Alert channels: send a test message."),
    "daemon": (
        "qkt.cli.daemon",
        "app",
        "Run the daemon in the foreground, or stop / inspect the running one.",
    ),
}


class LazyGroup(TyperGroup):
    """The whole `qkt` group, whose commands are built on first use: `qkt --help` lists them
    from COMMANDS, and shell completion builds only the command it completes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            group = typer.main.get_command(build(cmd_name))
            assert isinstance(group, TyperGroup)
            self.commands[cmd_name] = group.commands[cmd_name]
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as error:
            # typer suggests among the commands built so far (none here): suggest among all.
            close = difflib.get_close_matches(args[0], list(COMMANDS)) if args else []
            if close and "Did you mean" not in error.message:
                names = ", ".join(repr(name) for name in close)
                error.message = f"{error.message.rstrip('.')}. Did you mean {names}?"
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _shorten(text, limit)) for name, (_, _, text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    """`text` cut at a word to fit `limit`, with `...` (as click shortens a command's help)."""
    if len(text) <= limit:
        return text
    words, out = text.split(), ""
    for word in words:
        if len(out) + len(word) + 1 > limit - 3:
            break
        out = f"{out} {word}" if out else word
    return out + "..."


def root(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    version: VersionOption = False,
) -> None:
    """Docker for trading strategies: host many .qkt strategies on one box, one process each."""
    remember_state(ctx, state_dir)


def build(only: str | None = None) -> typer.Typer:
    """The `qkt` app with only the command `only`, or (None) with every command built lazily
    (same options, same help)."""
    app = typer.Typer(
        cls=LazyGroup if only is None else TyperGroup,
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
    if only is None:
        return app  # LazyGroup builds the commands
    for name, (module, attribute, _) in COMMANDS.items():
        if name != only:
            continue
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app
