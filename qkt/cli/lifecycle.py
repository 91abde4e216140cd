"""`qkt restart NAME|--all` and `qkt rm NAME [--purge]`."""

from __future__ import annotations

from typing import Annotated

import typer

from qkt.cli.options import JsonOption, StateDirOption
from qkt.cli.stop import AllOption, NameArgument, TimeoutOption, one_or_all


def restart_command(
    ctx: typer.Context,
    name: NameArgument = None,
    every: AllOption = False,
    timeout: TimeoutOption = 5000,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Stop NAME (or --all) gracefully and start the same deployment again.

    A restart runs the source that was deployed, even if the file changed since: to run the
    new file, use `qkt deploy FILE --as NAME --replace`.
    """
    from qkt.cli.remote import connect
    from qkt.cli.render import print_json, print_table
    from qkt.inputs import parse_timeout_ms

    target = one_or_all(name, every)
    parse_timeout_ms(timeout)
    with connect(ctx, state_dir) as client:
        entries = client.restart(target, timeout_ms=timeout)
    if json:
        print_json(entries if target is None else entries[0])
        return
    if not entries:
        typer.echo("no strategies deployed")
        return
    print_table(
        ["NAME", "PORT", "STATE", "STARTED"],
        [[e.name, e.port, e.state, e.started_at] for e in entries],
    )


def rm_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The strategy.", show_default=False)],
    purge: Annotated[
        bool, typer.Option("--purge", help="Delete its journal and logs instead of archiving.")
    ] = False,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Forget a stopped strategy: its journal and logs move to <state>/archive/ (or, with
    --purge, are deleted) and it leaves `qkt list -a`."""
    from qkt.cli.remote import connect
    from qkt.cli.render import print_json
    from qkt.paths import check_name

    check_name(name)
    with connect(ctx, state_dir) as client:
        result = client.remove(name, purge=purge)
    if json:
        print_json(result)
        return
    if result.archived is not None:
        where = f"journal and logs in {result.archived}"
    else:
        where = "journal and logs deleted" if purge else "no journal or logs to keep"
    typer.echo(f"removed {result.name} ({where})")
