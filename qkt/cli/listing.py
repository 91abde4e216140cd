"""`qkt list` and `qkt status [NAME]`: what runs, and how each strategy is doing."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from qkt.cli.options import JsonOption, StateDirOption
from qkt.cli.remote import connect
from qkt.cli.render import duration, money, print_json, print_table
from qkt.cli.statusview import status_lines
from qkt.paths import check_name


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
    print_table(
        ["NAME", "UPTIME", "PORT", "TRADES", "STATE", "PID", "RESTARTS"],
        [
            [
                e["name"],
                duration(e["uptime_ms"]),
                e["port"],
                e["trades"],
                e["state"],
                e["pid"],
                e["restarts"],
            ]
            for e in entries
        ],
        right={"UPTIME"},
    )
    for entry in entries:
        if entry.get("error") and entry["state"] != "running":
            typer.echo(f"{entry['name']}: {entry['error']}", err=True)


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
        found = client.status(name)
    if json:
        print_json(found)
        return
    if name is not None:
        for line in status_lines(found):
            typer.echo(line)
        return
    if not found:
        typer.echo("no strategies deployed (qkt deploy FILE)")
        return
    print_table(
        ["NAME", "STATE", "TRADES", "EQUITY", "REALIZED", "UNREALIZED", "POSITIONS"],
        [
            [
                s.get("name"),
                s.get("state"),
                s.get("trades"),
                money(s.get("equity")),
                money(s.get("realized")),
                money(s.get("unrealized")),
                _positions(s.get("positions")),
            ]
            for s in found
        ],
    )
    for each in found:
        if each.get("error"):  # crashed, or did not answer: the daemon's record says why
            typer.echo(f"{each.get('name')}: {each['error']}", err=True)


def _positions(positions: Any) -> int | None:
    if not isinstance(positions, list):
        return None
    return len([p for p in positions if p])
