"""`qkt halt`, `qkt resume`, `qkt kill`: the operator's verbs, by name or `--all` (docs/risk.md).

Halted: no new entries, exits still run. Resume lifts it. Kill halts, cancels every order and
with `--flatten` closes every position at market, then prints the positions left.
"""

from __future__ import annotations

from typing import Annotated

import typer

from qkt.cli.options import JsonOption, StateDirOption
from qkt.cli.remote import connect
from qkt.cli.render import print_json
from qkt.errors import UserError
from qkt.paths import check_name
from qkt.supervisor.records import HaltResult
from qkt.worker.record import HaltOutcome

MAX_REASON = 500
NameArgument = Annotated[
    str | None,
    typer.Argument(metavar="NAME", help="The strategy (or --all).", show_default=False),
]
AllOption = Annotated[bool, typer.Option("--all", help="Every deployed strategy.")]
ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason", metavar="TEXT", help="Why (shown by list and status).", show_default=False
    ),
]


def halt_command(
    ctx: typer.Context,
    name: NameArgument = None,
    every: AllOption = False,
    reason: ReasonOption = None,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """No new entries for NAME (or --all); exits (CLOSE, brackets, stops) still run."""
    target = _target(name, every)
    _check_reason(reason)
    with connect(ctx, state_dir) as client:
        result = client.risk_verb("halt", target, reason=reason)
    _show(result, json, "halted")


def resume_command(
    ctx: typer.Context,
    name: NameArgument = None,
    every: AllOption = False,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Lift the halt of NAME (or of every halted strategy with --all)."""
    target = _target(name, every)
    with connect(ctx, state_dir) as client:
        result = client.risk_verb("resume", target)
    if not json and not result.strategies:
        typer.echo("no strategy was halted")
        return
    _show(result, json, "resumed")


def kill_command(
    ctx: typer.Context,
    name: NameArgument = None,
    every: AllOption = False,
    flatten: Annotated[
        bool, typer.Option("--flatten", help="Close every position at market as well.")
    ] = False,
    reason: ReasonOption = None,
    state_dir: StateDirOption = None,
    json: JsonOption = False,
) -> None:
    """Halt NAME (or --all), cancel every order, with --flatten close every position."""
    target = _target(name, every)
    _check_reason(reason)
    with connect(ctx, state_dir) as client:
        result = client.risk_verb("kill", target, flatten=flatten, reason=reason)
    _show(result, json, "killed")


def _target(name: str | None, every: bool) -> str | None:
    """The name, or None for --all; one of them, not both."""
    if name is not None and every:
        raise UserError("give a NAME or --all, not both")
    if name is None and not every:
        raise UserError("give the strategy's NAME, or --all for every strategy")
    if name is not None:
        check_name(name)
    return name


def _check_reason(reason: str | None) -> None:
    if reason is not None and not 1 <= len(reason) <= MAX_REASON:
        raise UserError(f"--reason must be 1 to {MAX_REASON} characters")


def _show(result: HaltResult, json: bool, verb: str) -> None:
    if json:
        print_json(result)
        return
    if not result.strategies:
        typer.echo("no strategies deployed (qkt deploy FILE)")
    for outcome in result.strategies:
        typer.echo(_line(outcome, verb))


def _line(outcome: HaltOutcome, verb: str) -> str:
    """`halted NAME: reason`, `resumed NAME`, `killed NAME: reason; positions left: none`."""
    if verb == "resumed":
        return f"resumed {outcome.name}"
    why = "" if outcome.halt is None else f": {outcome.halt.reason}"
    if verb != "killed":
        return f"{verb} {outcome.name}{why}"
    left = ", ".join(f"{p.broker}:{p.symbol} {p.qty}" for p in outcome.positions) or "none"
    return f"{verb} {outcome.name}{why}; positions left: {left}"
