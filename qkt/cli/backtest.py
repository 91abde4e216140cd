"""`qkt backtest FILE --data PATH`: replay history through the engine as fast as it goes.

The figures are defined in docs/backtest.md. On a terminal a progress bar with percentage and
ETA runs on stderr; `--json` prints spec.md's object on stdout and nothing else. The summary comes
first, then at most `--trades N` fills. `--param` runs a sweep instead: one backtest per
combination of LET values, on every core, ranked by `--rank`. The work is `qkt.cli.replay`,
imported only when a backtest runs, so that `qkt --help` never imports the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qkt.cli import risk
from qkt.cli.options import JsonOption
from qkt.cli.run import BalanceOption, FeeOption, SlippageOption

DEFAULT_TRADES = "20"


def backtest_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The .qkt strategy to test.")],
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            help="A candle CSV, a folder of <SYMBOL>.csv files, or a qkt 0.13 data root; or, "
            "repeated, SYMBOL=PATH for each symbol.",
            show_default=False,
            metavar="PATH|SYMBOL=PATH",
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
    trades: Annotated[
        str,
        typer.Option(
            "--trades", help="Fills to list after the summary: N or all.", metavar="N|all"
        ),
    ] = DEFAULT_TRADES,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a self-contained HTML report (charts).",
            metavar="FILE.html",
        ),
    ] = None,
    gap: Annotated[
        int | None,
        typer.Option(
            "--gap",
            help="Report data gaps of more than N missing candles (default 1).",
            show_default=False,
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Sweep a LET: NAME=LO..HI:STEP or NAME=A,B,C (repeat for a grid).",
            show_default=False,
            metavar="NAME=VALUES",
        ),
    ] = None,
    rank_by: Annotated[
        str,
        typer.Option("--rank", help="Sweep ranking: a figure of the summary (docs/backtest.md)."),
    ] = "sharpe",
    max_daily_loss: risk.DailyLoss = None,
    max_drawdown_pct: risk.DrawdownPct = None,
    max_position_notional: risk.PositionNotional = None,
    max_orders_per_minute: risk.OrdersPerMinute = None,
    max_loss_streak: risk.LossStreak = None,
    leverage: risk.Leverage = None,
    margin: risk.Margin = None,
) -> None:
    """Replay history through the strategy and print a summary and the trade list.

    The risk limits and buying power of a deploy apply (the same flags); the summary lists the
    halts and the rejected orders.
    """
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
        trades=trades,
        report=report,
        gap=gap,
        params=params,
        rank_by=rank_by,
        limits=risk.limit_values(
            max_daily_loss,
            max_drawdown_pct,
            max_position_notional,
            max_orders_per_minute,
            max_loss_streak,
        ),
        leverage=leverage,
        margin=margin,
    )
