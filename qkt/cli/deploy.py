"""`qkt deploy FILE [--as NAME]`: start a strategy under the running daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qkt.cli.options import JsonOption, StateDirOption
from qkt.cli.remote import connect
from qkt.cli.render import print_json, print_table
from qkt.paths import check_name


def deploy_command(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The .qkt file to run.", show_default=False)
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--as", metavar="NAME", help="Name it (default: the file's stem).", show_default=False
        ),
    ] = None,
    balance: Annotated[
        str | None,
        typer.Option("--balance", help="Starting balance (default 10000).", show_default=False),
    ] = None,
    fee_bps: Annotated[
        str | None,
        typer.Option("--fee-bps", help="Fee per fill, in basis points.", show_default=False),
    ] = None,
    slippage_bps: Annotated[
        str | None,
        typer.Option(
            "--slippage-bps", help="Slippage per fill, in basis points.", show_default=False
        ),
    ] = None,
    sim: Annotated[
        bool, typer.Option("--sim", help="Put every stream on the simulated market.")
    ] = False,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            help="Must match the daemon's --speed (the market is shared).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Must match the daemon's --seed (the market is shared).",
            show_default=False,
        ),
    ] = None,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Compile FILE and start it as NAME; prints NAME PORT STATE STARTED once it is running."""
    if name is not None:
        check_name(name)
    with connect(ctx, state_dir) as client:
        entry = client.deploy(
            str(file.expanduser().absolute()),
            name,
            balance=balance,
            fee_bps=fee_bps,
            slippage_bps=slippage_bps,
            sim=sim or None,
            speed=speed,
            seed=seed,
        )
    if json:
        print_json(entry)
        return
    print_table(
        ["NAME", "PORT", "STATE", "STARTED"],
        [[entry["name"], entry["port"], entry["state"], entry["started_at"]]],
    )
