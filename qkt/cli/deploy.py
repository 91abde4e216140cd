"""`qkt deploy FILE [--as NAME]`: start a strategy under the running daemon."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qkt.cli import risk
from qkt.cli.options import JsonOption, StateDirOption

if TYPE_CHECKING:
    from qkt.control.client import ControlError


def _flag(name: str, text: str) -> Any:
    return typer.Option(name, help=text)


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
    replace: Annotated[
        bool, _flag("--replace", "Replace the strategy running as NAME (stop it, start FILE).")
    ] = False,
    keep_state: Annotated[
        bool, _flag("--keep-state", "With --replace: keep its journal (trades, balance).")
    ] = False,
    resume: Annotated[
        bool, _flag("--resume", "Carry on with the books NAME has from another file or flags.")
    ] = False,
    fresh: Annotated[
        bool, _flag("--fresh", "Archive the books NAME has from before, and start clean.")
    ] = False,
    max_daily_loss: risk.DailyLoss = None,
    max_drawdown_pct: risk.DrawdownPct = None,
    max_position_notional: risk.PositionNotional = None,
    max_orders_per_minute: risk.OrdersPerMinute = None,
    max_loss_streak: risk.LossStreak = None,
    leverage: risk.Leverage = None,
    margin: risk.Margin = None,
    require_warm: Annotated[
        bool,
        typer.Option(
            "--require-warm",
            help="Fail, deploying nothing, unless the history every indicator needs is there.",
        ),
    ] = False,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Compile FILE and start it as NAME; prints NAME PORT STATE STARTED once it is running.

    A file that does not compile starts nothing: each mistake prints on stderr as
    FILE:LINE:COL: message, with the line and a caret, then the total N errors (exit 1).

    A NAME whose journal was written by another file or other account flags needs a choice:
    --resume (carry on with those books) or --fresh (archive them, start clean).
    """
    from qkt.cli.remote import connect
    from qkt.cli.render import print_json, print_table
    from qkt.control.client import ControlError
    from qkt.paths import check_name

    if name is not None:
        check_name(name)
    limits = risk.limit_values(
        max_daily_loss,
        max_drawdown_pct,
        max_position_notional,
        max_orders_per_minute,
        max_loss_streak,
    )
    margin_on = risk.margin_value(leverage, margin)
    with connect(ctx, state_dir) as client:
        try:
            entry = client.deploy(
                str(file.expanduser().absolute()),
                name,
                balance=balance,
                fee_bps=fee_bps,
                slippage_bps=slippage_bps,
                sim=sim or None,
                speed=speed,
                seed=seed,
                replace=replace or None,
                keep_state=keep_state or None,
                resume=resume or None,
                fresh=fresh or None,
                leverage=leverage,
                margin=margin_on,
                **limits,
                require_warm=require_warm or None,
            )
        except ControlError as error:
            if error.remote_code != "dsl_error":
                raise
            _print_dsl_errors(error)
            raise typer.Exit(1) from None
    if json:
        print_json(entry)
        return
    print_table(
        ["NAME", "PORT", "STATE", "STARTED"],
        [[entry.name, entry.port, entry.state, entry.started_at]],
    )
    if entry.warming:
        typer.echo(f"{entry.name}: warming: {entry.warming}", err=True)


def _print_dsl_errors(error: ControlError) -> None:
    """Every mistake with its line and caret, then `N errors`, as `qkt check` prints them."""
    rendered = error.details.get("rendered")
    if isinstance(rendered, str) and rendered:
        typer.echo(rendered, err=True)
        return
    # A daemon that sends only the positions: one line per error, then the count.
    found = error.details.get("errors")
    lines = [str(line) for line in found] if isinstance(found, list) and found else [error.message]
    for line in lines:
        typer.echo(line, err=True)
    typer.echo(f"{len(lines)} error{'' if len(lines) == 1 else 's'}", err=True)
