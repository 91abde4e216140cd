"""`qkt backtest FILE --data PATH`: replay history through the engine as fast as it goes.

The figures are defined in `qkt.worker.backtest`. On a terminal a progress bar runs on stderr;
`--json` prints spec.md's object on stdout and nothing else. The work is `qkt.cli.replay`,
imported only when a backtest runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qkt.cli.options import JsonOption
from qkt.cli.run import BalanceOption, FeeOption, SlippageOption


def backtest_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The .qkt strategy to test.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A candle CSV, a folder of <SYMBOL>.csv files, or a qkt 0.13 data root.",
            show_default=False,
        ),
    ],
    start: Annotated[
        str | None,
        typer.Option("--from", help="Start: a date or ISO datetime (UTC), included."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="End (UTC): a date is included whole; a datetime is the first moment left out.",
        ),
    ] = None,
    json_output: JsonOption = False,
    balance: BalanceOption = "10000",
    fee_bps: FeeOption = "0",
    slippage_bps: SlippageOption = "0",
) -> None:
    """Replay history through the strategy and print a summary and the trade list."""
    from qkt.cli.replay import run_backtest_command

    run_backtest_command(
        file,
        data,
        start=start,
        end=end,
        json_output=json_output,
        balance=balance,
        fee_bps=fee_bps,
        slippage_bps=slippage_bps,
    )
