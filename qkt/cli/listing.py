"""`qkt list [-a]` and `qkt status [NAME]`: what runs (and ran), and how each strategy is doing.

Only typer and the options load with the command line; what a command needs to print is
imported when it runs (a `qkt --help` must not pay for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from qkt.cli.haltview import shown_state
from qkt.cli.options import JsonOption, StateDirOption
from qkt.supervisor.records import ListEntry

if TYPE_CHECKING:
    from qkt.supervisor.figures import HistoryEntry
    from qkt.supervisor.records import StrategyStatus


def list_command(
    ctx: typer.Context,
    every: Annotated[
        bool,
        typer.Option(
            "--all", "-a", help="Also stopped and failed strategies, with final equity and PnL."
        ),
    ] = False,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """NAME UPTIME PORT TRADES STATE PID RESTARTS of every deployed strategy."""
    from qkt.cli.remote import connect
    from qkt.cli.render import duration, print_json, print_table

    with connect(ctx, state_dir) as client:
        if every:
            history = client.list_all()
        else:
            entries = client.list()
    if every:
        _print_history(history, json)
        return
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
            [e.name, duration(e.uptime_ms), e.port, e.trades, _state(e), e.pid, e.restarts]
            + ([None if e.halt is None else e.halt.reason] if halted else [])
            for e in entries
        ],
        right={"UPTIME"},
    )
    for entry in entries:
        if entry.error and entry.state != "running":
            typer.echo(f"{entry.name}: {entry.error}", err=True)
        elif entry.warming and entry.state == "running":
            typer.echo(f"{entry.name}: warming: {entry.warming}", err=True)


def _state(entry: ListEntry | StrategyStatus) -> str:
    """`halted` for a running strategy that makes no new entries; `(stale)` while a key it
    reads is not live; `(warming)` while history is missing (the reason is printed below)."""
    if isinstance(entry, ListEntry):
        halted = entry.halt is not None
    else:  # a running worker's own status: its risk record says whether it is halted
        halted = entry.risk is not None and entry.risk.halted
    state = shown_state(entry.state, halted)
    marks = [m for m, on in (("stale", entry.stale), ("warming", entry.warming)) if on]
    return f"{state} ({', '.join(marks)})" if marks else state


def _print_history(rows: list[HistoryEntry], json: bool) -> None:
    from qkt.cli.render import duration, money, print_json, print_table

    if json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no strategies deployed or stopped (qkt deploy FILE)")
        return
    print_table(
        ["NAME", "STATE", "UPTIME", "TRADES", "EQUITY", "PNL", "EXIT", "STOPPED"],
        [
            [
                r.name,
                r.state,
                duration(r.uptime_ms),
                r.trades,
                money(r.equity),
                money(r.total_pnl),
                r.exit_code,
                r.stopped_at,
            ]
            for r in rows
        ],
        right={"UPTIME"},
    )


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
    from qkt.cli.remote import connect
    from qkt.cli.render import print_json, print_table
    from qkt.paths import check_name
    from qkt.supervisor.records import DaemonRecord

    if name is not None:
        check_name(name)
    with connect(ctx, state_dir) as client:
        if name is not None:
            one = client.status(name)
            if json:
                print_json(one)
                return
            from qkt.cli.statusview import status_lines
            from qkt.records import to_json

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
    from qkt.cli.render import money
    from qkt.supervisor.records import DaemonRecord

    if isinstance(status, DaemonRecord):
        return [status.name, _state(status), status.trades, None, None, None, None]
    return [
        status.name,
        _state(status),
        status.trades,
        money(status.equity),
        money(status.realized),
        money(status.unrealized),
        len(status.positions),
    ]
