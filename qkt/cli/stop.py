"""`qkt stop NAME`: graceful stop, then SIGKILL after the timeout."""

from __future__ import annotations

from typing import Annotated

import typer

from qkt.cli.options import JsonOption, StateDirOption
from qkt.cli.remote import connect
from qkt.cli.render import print_json
from qkt.inputs import parse_timeout_ms
from qkt.paths import check_name


def stop_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The strategy.", show_default=False)],
    flatten: Annotated[
        bool, typer.Option("--flatten", help="Close every position before stopping.")
    ] = False,
    timeout: Annotated[
        int,
        typer.Option(
            "--timeout", metavar="MS", help="Grace before SIGKILL, in milliseconds (0 to 1 h)."
        ),
    ] = 5000,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Stop NAME gracefully (SIGTERM, or a flatten-then-stop), SIGKILL after --timeout."""
    check_name(name)
    parse_timeout_ms(timeout)  # the API's own check, before needing a daemon
    with connect(ctx, state_dir) as client:
        result = client.stop(name, flatten=flatten, timeout_ms=timeout)
    if json:
        print_json(result)
        return
    code = result.exit_code
    typer.echo(f"stopped {result.name}" + ("" if code is None else f" (exit code {code})"))
