"""`qkt backtest FILE --data PATH`: replay history through the engine as fast as it goes.

The figures are defined in `qkt.worker.backtest`. On a terminal a progress bar runs on stderr;
`--json` prints spec.md's object on stdout and nothing else.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from qkt.cli.options import JsonOption
from qkt.cli.run import (
    BalanceOption,
    FeeOption,
    SlippageOption,
    account_flags,
    compile_or_exit,
)
from qkt.engine import EngineConfig
from qkt.errors import UserError
from qkt.market.csvdata import parse_timestamp
from qkt.money import to_str
from qkt.worker.backtest import DAY_MS, BacktestResult, run_backtest

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


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
    config = account_flags(balance, fee_bps, slippage_bps)
    start_ms = None if start is None else _moment("--from", start)
    end_ms = None if end is None else _moment("--to", end)
    if end is not None and end_ms is not None and _DATE_ONLY.fullmatch(end.strip()):
        end_ms += DAY_MS
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise UserError(f"--to ({end}) must be after --from ({start})")
    program = compile_or_exit(file)
    if sys.stderr.isatty():
        result = _with_progress(program, data, config, start_ms, end_ms)
    else:
        result = run_backtest(program, data, config, start_ms=start_ms, end_ms=end_ms)
    if json_output:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
        return
    _print(result)


def _moment(flag: str, text: str) -> int:
    try:
        return parse_timestamp(text)
    except ValueError:
        raise UserError(
            f"{flag} takes a date or an ISO 8601 datetime (UTC), e.g. 2026-01-31 or "
            f"2026-01-31T12:00:00, got {text!r}"
        ) from None


def _with_progress(
    program: Any, data: Path, config: EngineConfig, start_ms: int | None, end_ms: int | None
) -> BacktestResult:
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[candles]:,} candles, {task.fields[trades]:,} trades"),
        TimeElapsedColumn(),
    )
    # The total is known only in time: a bar when --from and --to bound the run, else a pulse.
    total = None if start_ms is None or end_ms is None else end_ms - start_ms
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("backtest", total=total, candles=0, trades=0)

        def progress(candles: int, trades: int, close_ms: int) -> None:
            done = None if total is None or start_ms is None else close_ms - start_ms
            bar.update(task, completed=done, candles=candles, trades=trades)

        return run_backtest(
            program, data, config, start_ms=start_ms, end_ms=end_ms, progress=progress
        )


def _print(result: BacktestResult) -> None:
    # A pipe or a file has no width: give the tables room rather than rich's default of 80.
    console = Console(width=None if sys.stdout.isatty() else 160)
    if result.fills:
        trades = Table(title=f"{len(result.fills)} trades")
        trades.add_column("time (UTC)", no_wrap=True)
        for column in ("side", "symbol", "qty", "price", "fee", "realized"):
            # Fold, never truncate: a trader must see every digit of a price or a PnL.
            text = column in {"side", "symbol"}
            trades.add_column(column, justify="left" if text else "right", overflow="fold")
        for fill in result.fills:
            trades.add_row(
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(fill.ts / 1000)),
                fill.side.value,
                fill.instrument.symbol,
                to_str(fill.qty),
                to_str(fill.price),
                to_str(fill.fee),
                to_str(fill.realized),
            )
        console.print(trades)
    s = result.summary
    table = Table(title=f"{result.strategy} v{result.version}: {result.candles:,} candles")
    table.add_column("measure")
    table.add_column("value", justify="right", overflow="fold")
    rows = [
        ("trades", str(s.trades)),
        ("realized", to_str(s.realized)),
        ("unrealized", to_str(s.unrealized)),
        ("total PnL", to_str(s.total_pnl)),
        ("equity", to_str(s.equity)),
        ("fees", to_str(s.fees)),
        ("max drawdown", f"{to_str(s.max_drawdown)} ({float(s.max_drawdown_pct):.2%})"),
        ("win rate", "n/a" if s.win_rate is None else f"{s.win_rate:.1%}"),
        ("Sharpe (daily, x sqrt 365)", "n/a" if s.sharpe is None else f"{s.sharpe:.2f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
