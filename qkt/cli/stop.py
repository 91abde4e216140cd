"""`qkt stop NAME|--all`: graceful stop, then SIGKILL after the timeout."""

from __future__ import annotations

from typing import Annotated

import typer

from qkt.cli.options import JsonOption, StateDirOption

NameArgument = Annotated[
    str | None,
    typer.Argument(metavar="NAME", help="The strategy (or --all).", show_default=False),
]
AllOption = Annotated[bool, typer.Option("--all", help="Every deployed strategy.")]
TimeoutOption = Annotated[
    int,
    typer.Option(
        "--timeout", metavar="MS", help="Grace before SIGKILL, in milliseconds (0 to 1 h)."
    ),
]


def one_or_all(name: str | None, every: bool) -> str | None:
    """NAME, or None for --all; a usage error (exit 2) for neither or both."""
    if (name is None) == (not every):
        raise typer.BadParameter("give a NAME or --all (not both)")
    if name is not None:
        from qkt.paths import check_name

        check_name(name)
    return name


def stop_command(
    ctx: typer.Context,
    name: NameArgument = None,
    every: AllOption = False,
    flatten: Annotated[
        bool, typer.Option("--flatten", help="Close every position before stopping.")
    ] = False,
    timeout: TimeoutOption = 5000,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Stop NAME (or --all) gracefully (SIGTERM, or a flatten-then-stop), SIGKILL after --timeout.

    A stopped strategy stays listed by `qkt list -a` with its final figures until `qkt rm`.
    """
    from qkt.cli.remote import connect
    from qkt.cli.render import print_json
    from qkt.inputs import parse_timeout_ms

    target = one_or_all(name, every)
    parse_timeout_ms(timeout)  # the API's own check, before needing a daemon
    with connect(ctx, state_dir) as client:
        if target is None:
            results = client.stop_all(flatten=flatten, timeout_ms=timeout)
        else:
            results = [client.stop(target, flatten=flatten, timeout_ms=timeout)]
    if json:
        print_json(results if target is None else results[0])
        return
    if not results:
        typer.echo("no strategies deployed")
    for result in results:
        code = result.exit_code
        typer.echo(f"stopped {result.name}" + ("" if code is None else f" (exit code {code})"))
