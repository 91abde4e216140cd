"""`qkt backtest`'s implementation (the command's signature is `qkt.cli.backtest`): replay
history through the engine as fast as it goes.

The figures are defined in docs/backtest.md. On a terminal a progress bar with percentage and
ETA runs on stderr; `--json` prints spec.md's object on stdout and nothing else. The summary comes
first, then at most `--trades N` fills. `--param` runs a sweep instead: one backtest per
combination of LET values, on every core, ranked by `--rank`.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from qkt.cli.foreground import account_flags, compile_or_exit
from qkt.dsl import Program, read_source
from qkt.engine import EngineConfig, limits_from_flags, margin_from_flags
from qkt.errors import UserError
from qkt.market import csvdata
from qkt.money import to_str
from qkt.worker.backtest import DAY_MS, GAP_CANDLES, BacktestResult, run_backtest
from qkt.worker.report import money, summary_rows
from qkt.worker.sweep import (
    RANKABLE,
    SweepRun,
    combinations,
    describe,
    parse_param,
    rank,
    run_sweep,
)

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def run_backtest_command(
    file: Path,
    data: list[str],
    *,
    start: str | None,
    end: str | None,
    json_output: bool,
    balance: str,
    fee_bps: str,
    slippage_bps: str,
    trades: str,
    report: Path | None,
    gap: int | None,
    params: list[str] | None,
    rank_by: str,
    limits: dict[str, str],
    leverage: str | None,
    margin: str | None,
) -> None:
    """Replay FILE over DATA and print the summary and trades (or the JSON object)."""
    gap = GAP_CANDLES if gap is None else gap
    config = replace(
        account_flags(balance, fee_bps, slippage_bps),
        limits=limits_from_flags(limits),
        margin=margin_from_flags(leverage, margin),
    )
    start_ms = None if start is None else _moment("--from", start)
    end_ms = None if end is None else _moment("--to", end)
    if end is not None and end_ms is not None and _DATE_ONLY.fullmatch(end.strip()):
        end_ms += DAY_MS
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise UserError(f"--to ({end}) must be after --from ({start})")
    shown = _trade_limit(trades)
    if gap < 0:
        raise UserError("--gap must not be negative")
    paths = data_paths(data)
    if params:
        _sweep(file, params, rank_by, paths, config, start_ms, end_ms, json_output)
        return
    program = compile_or_exit(file)
    if sys.stderr.isatty():
        result = _with_progress(program, paths, config, start_ms, end_ms, gap)
    else:
        result = run_backtest(
            program, paths, config, start_ms=start_ms, end_ms=end_ms, gap_candles=gap
        )
    if report is not None:
        from qkt.worker.htmlreport import write_report  # plotly is imported only for a report

        write_report(result, report, summary_rows(result.summary))
    if json_output:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
        return
    _print(result, shown)
    if report is not None:
        typer.echo(f"report: {report}")


def data_paths(values: list[str]) -> csvdata.DataPaths:
    """One `--data PATH`, or `--data SYMBOL=PATH` repeated (a UserError for a mix)."""
    mapped = [value for value in values if "=" in value]
    if not mapped:
        if len(values) != 1:
            raise UserError("--data: give one PATH, or SYMBOL=PATH for each symbol")
        return Path(values[0])
    if len(mapped) != len(values):
        raise UserError("--data: give one PATH, or SYMBOL=PATH for each symbol, not both")
    mapping: dict[str, Path] = {}
    for value in values:
        symbol, _, path = value.partition("=")
        if not symbol.strip() or not path.strip():
            raise UserError(f"--data: expected SYMBOL=PATH, got {value!r}")
        mapping[symbol.strip().upper()] = Path(path.strip())
    return mapping


def _trade_limit(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    if not text.strip().isdigit():
        raise UserError(f"--trades takes a number of rows or 'all', got {text!r}")
    return int(text)


def _moment(flag: str, text: str) -> int:
    try:
        return csvdata.parse_timestamp(text)
    except ValueError:
        raise UserError(
            f"{flag} takes a date or an ISO 8601 datetime (UTC), e.g. 2026-01-31 or "
            f"2026-01-31T12:00:00, got {text!r}"
        ) from None


def _with_progress(
    program: Program,
    data: csvdata.DataPaths,
    config: EngineConfig,
    start_ms: int | None,
    end_ms: int | None,
    gap: int,
) -> BacktestResult:
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[candles]:,} candles, {task.fields[trades]:,} trades"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    # Progress in market time: the data's span (its ends are read cheaply) cut by --from/--to.
    first, last = _span(data, program, start_ms, end_ms)
    total = max(1, last - first)
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("backtest", total=total, candles=0, trades=0)

        def progress(candles: int, trades: int, close_ms: int) -> None:
            done = total if close_ms == 0 else min(total, max(0, close_ms - first))
            bar.update(task, completed=done, candles=candles, trades=trades)

        return run_backtest(
            program,
            data,
            config,
            start_ms=start_ms,
            end_ms=end_ms,
            progress=progress,
            gap_candles=gap,
        )


def _span(
    data: csvdata.DataPaths, program: Program, start_ms: int | None, end_ms: int | None
) -> tuple[int, int]:
    firsts, lasts = [], []
    for symbol in {key.symbol for key in program.keys}:
        try:
            first, last = csvdata.data_span(csvdata.locate(data, symbol))
        except UserError:
            continue  # the run itself says what is wrong
        firsts.append(first)
        lasts.append(last)
    first = min(firsts, default=0)
    last = max(lasts, default=1)
    return max(first, start_ms or first), min(last, end_ms or last)


def _print(result: BacktestResult, shown: int | None) -> None:
    # A pipe or a file has no width: give the tables room rather than rich's default of 80.
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"{result.strategy} v{result.version}: {result.candles:,} candles")
    table.add_column("measure")
    table.add_column("value", justify="right", overflow="fold")
    for name, value in summary_rows(result.summary):
        table.add_row(name, value)
    console.print(table)
    if not result.fills or shown == 0:
        return
    fills = result.fills if shown is None else result.fills[:shown]
    title = f"{len(result.fills):,} trades"
    if len(fills) < len(result.fills):
        title = f"first {len(fills):,} of {title} (--trades all lists every one)"
    trades = Table(title=title)
    trades.add_column("time (UTC)", no_wrap=True)
    for column in ("side", "symbol", "qty", "price", "fee", "realized"):
        # Fold, never truncate: a trader must see every digit of a price or a quantity.
        text = column in {"side", "symbol"}
        trades.add_column(column, justify="left" if text else "right", overflow="fold")
    for fill in fills:
        trades.add_row(
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(fill.ts / 1000)),
            fill.side.value,
            fill.instrument.symbol,
            to_str(fill.qty),
            to_str(fill.price),
            money(fill.fee),
            money(fill.realized),
        )
    console.print(trades)


def _sweep(
    file: Path,
    params: list[str],
    rank_by: str,
    data: csvdata.DataPaths,
    config: EngineConfig,
    start_ms: int | None,
    end_ms: int | None,
    json_output: bool,
) -> None:
    if rank_by not in RANKABLE:
        raise UserError(f"--rank takes one of {', '.join(RANKABLE)}, got {rank_by!r}")
    grid = combinations([parse_param(text) for text in params])
    source = read_source(file).decode("utf-8", errors="replace")
    compile_or_exit(file)  # the file's own mistakes, rendered with their source lines
    runs = rank(
        run_sweep(source, str(file), grid, data, config, start_ms=start_ms, end_ms=end_ms),
        rank_by,
    )
    if json_output:
        sys.stdout.write(
            orjson.dumps({"rank": rank_by, "runs": [_run_json(r) for r in runs]}).decode() + "\n"
        )
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"{len(runs)} runs, best {rank_by} first")
    names = [name for name, _ in grid[0]]
    extra = [] if rank_by in ("sharpe", "total_return", "trades") else [rank_by]
    for column in (*names, *extra, "sharpe", "total return", "max DD", "trades", "equity"):
        table.add_column(column, justify="right")
    for run in runs:
        s, f = run.summary, run.summary.figures
        ranked = [_figure(s.to_json()[name]) for name in extra]
        table.add_row(
            *(to_str(value) for _, value in run.params),
            *ranked,
            "n/a" if f.sharpe is None else f"{f.sharpe:.2f}",
            "n/a" if f.total_return is None else f"{f.total_return:.2%}",
            f"{float(f.max_drawdown_fraction):.2%}",
            f"{s.trades:,}",
            money(s.equity),
        )
    console.print(table)


def _figure(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{float(value):.4f}"


def _run_json(run: SweepRun) -> dict[str, Any]:
    return {
        "params": {name: to_str(value) for name, value in run.params},
        "label": describe(run.params),
        "candles": run.candles,
        "summary": run.summary.to_json(),
    }
