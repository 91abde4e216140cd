"""`qkt list` and `qkt status [NAME]`: what runs, and how each strategy is doing."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from qkt.cli.haltview import list_state
from qkt.cli.options import JsonOption, StateDirOption
from qkt.cli.remote import connect
from qkt.cli.render import duration, money, print_json, print_table
from qkt.cli.statusview import status_lines
from qkt.paths import check_name
from qkt.records import to_json
from qkt.supervisor.records import DaemonRecord, StrategyStatus


def list_command(
    ctx: typer.Context, state_dir: StateDirOption = None, json: JsonOption = False
) -> None:
    """NAME UPTIME PORT TRADES STATE PID RESTARTS of every deployed strategy."""
    with connect(ctx, state_dir) as client:
        entries = client.list()
    if json:
        print_json(entries)
        return
    if not entries:
        typer.echo("no strategies deployed (qkt deploy FILE)")
        return
    halted = any(e.halt is not None for e in entries)  # a REASON column only then
    print_table(
        ["NAME", "UPTIME", "PORT", "TRADES", "STATE", "PID", "RESTARTS"]
        + (["REASON"] if halted else []),
        [
            [e.name, duration(e.uptime_ms), e.port, e.trades, list_state(e), e.pid, e.restarts]
            + ([None if e.halt is None else e.halt.reason] if halted else [])
            for e in entries
        ],
        right={"UPTIME"},
    )
    for entry in entries:
        if entry.error and entry.state != "running":
            typer.echo(f"{entry.name}: {entry.error}", err=True)


def status_command(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]", help="One strategy (default: a table of all).", show_default=False
        ),
    ] = None,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """One strategy's /status, or a roll-up table of every strategy."""
    if name is not None:
        check_name(name)
    with connect(ctx, state_dir) as client:
        if name is not None:
            one = client.status(name)
            if json:
                print_json(one)
                return
            for line in status_lines(to_json(one)):
                typer.echo(line)
            return
        found = client.status_all()
    if json:
        print_json(found)
        return
    if not found:
        typer.echo("no strategies deployed (qkt deploy FILE)")
        return
    print_table(
        ["NAME", "STATE", "TRADES", "EQUITY", "REALIZED", "UNREALIZED", "POSITIONS"],
        [_summary(each) for each in found],
    )
    for each in found:
        if isinstance(each, DaemonRecord) and each.error:  # crashed, or did not answer: why
            typer.echo(f"{each.name}: {each.error}", err=True)


def _summary(status: StrategyStatus) -> list[Any]:
    """One row of the `qkt status` table: a worker's figures, or what the daemon knows."""
    if isinstance(status, DaemonRecord):
        return [status.name, status.state, status.trades, None, None, None, None]
    halted = status.risk is not None and status.risk.halted
    return [
        status.name,
        "halted" if halted and status.state == "running" else status.state,
        status.trades,
        money(status.equity),
        money(status.realized),
        money(status.unrealized),
        len(status.positions),
    ]
