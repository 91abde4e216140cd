"""Parameter sweeps: one backtest per combination of LET values, on every core.

`--param fast=5..20:5 --param slow=20,30,50` gives fast in 5, 10, 15, 20 and slow in 20, 30, 50:
twelve runs. A parameter names a LET of the strategy; its expression is replaced by the number
(LETs are macros, so every use sees it), then the file is compiled again, so a value the language
refuses (a period of 0) is a compile error naming the combination. Runs are processes: the engine
is pure Python, and only processes use more than one core.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from qkt.dsl import CompileError, Program, nodes
from qkt.dsl.checker import check
from qkt.dsl.compiler import compile_tree
from qkt.dsl.lexer import tokenize
from qkt.dsl.parser import parse
from qkt.engine import EngineConfig
from qkt.errors import QktError, UserError
from qkt.market import csvdata
from qkt.worker.backtest import run_backtest
from qkt.worker.backtestresult import BacktestSummary

MAX_RUNS: Final = 10_000
# Figures a sweep can be ranked by, and whether bigger is better.
RANKABLE: Final = {
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "cagr": True,
    "total_return": True,
    "profit_factor": True,
    "win_rate": True,
    "max_drawdown_fraction": False,
    "trades": True,
}

Params = tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True, slots=True)
class SweepRun:
    """One combination and the summary of its backtest."""

    params: Params
    candles: int
    summary: BacktestSummary


def parse_param(text: str) -> tuple[str, list[Decimal]]:
    """`NAME=LO..HI:STEP` or `NAME=A,B,C` -> (NAME, values); a UserError says the forms."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not spec.strip():
        raise UserError(f"--param takes NAME=LO..HI:STEP or NAME=A,B,C, got {text!r}")
    try:
        if ".." in spec:
            bounds, _, step_text = spec.partition(":")
            low_text, _, high_text = bounds.partition("..")
            low, high = Decimal(low_text), Decimal(high_text)
            step = Decimal(step_text) if step_text else Decimal(1)
            if step <= 0 or high < low:
                raise UserError(f"--param {name}: need LO <= HI and STEP > 0, got {spec!r}")
            count = int((high - low) / step) + 1
            if count > MAX_RUNS:
                raise UserError(f"--param {name}: {count} values is too many (max {MAX_RUNS})")
            return name, [low + i * step for i in range(count)]
        return name, [Decimal(part) for part in spec.split(",")]
    except (InvalidOperation, ValueError):
        raise UserError(f"--param {name}: not numbers: {spec!r}") from None


def combinations(params: Sequence[tuple[str, list[Decimal]]]) -> list[Params]:
    """Every combination, the first parameter varying slowest."""
    names = [name for name, _ in params]
    if len(set(names)) != len(names):
        raise UserError("--param: a parameter is given twice")
    grid = [tuple(zip(names, values, strict=True)) for values in _product(params)]
    if len(grid) > MAX_RUNS:
        raise UserError(f"--param: {len(grid)} combinations is too many (max {MAX_RUNS})")
    return grid


def _product(params: Sequence[tuple[str, list[Decimal]]]) -> Iterator[tuple[Decimal, ...]]:
    return itertools.product(*(values for _, values in params))


def compile_with(source: str, path: str, params: Params) -> Program:
    """Compile `source` with the named LETs' expressions replaced by the given numbers."""
    tokens, errors = tokenize(source, path)
    tree, syntax = parse(tokens, path)
    errors += syntax + check(tree, path)
    if errors:
        raise CompileError(errors, source)
    lets = {let.name: let for let in tree.lets}
    unknown = [name for name, _ in params if name not in lets]
    if unknown:
        known = ", ".join(lets) or "none"
        raise UserError(f"--param {unknown[0]}: no LET of that name in {path} (LETs: {known})")
    values = dict(params)
    replaced = tuple(
        dataclasses.replace(let, expr=nodes.Num(let.span, values[let.name]))
        if let.name in values
        else let
        for let in tree.lets
    )
    tree = dataclasses.replace(tree, lets=replaced)
    errors = check(tree, path)
    if errors:
        raise CompileError(errors, source)
    return compile_tree(tree, path)


def _run_one(
    source: str,
    path: str,
    params: Params,
    data: csvdata.DataPaths,
    config: EngineConfig,
    start_ms: int | None,
    end_ms: int | None,
) -> SweepRun:
    try:
        program = compile_with(source, path, params)
        result = run_backtest(program, data, config, start_ms=start_ms, end_ms=end_ms)
    except QktError as error:  # as a plain UserError: it crosses a process boundary
        raise UserError(f"with {describe(params)}: {error.message}") from None
    return SweepRun(params, result.candles, result.summary)


def describe(params: Params) -> str:
    """`fast=5 slow=20`."""
    return " ".join(f"{name}={value}" for name, value in params)


def run_sweep(
    source: str,
    path: str,
    grid: Sequence[Params],
    data: csvdata.DataPaths,
    config: EngineConfig,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    workers: int | None = None,
) -> list[SweepRun]:
    """Every combination's backtest, in grid order, on `workers` processes (all cores)."""
    # Fail fast, in this process, on a parameter the file does not have or refuses.
    compile_with(source, path, grid[0])
    count = min(len(grid), workers or os.cpu_count() or 1)
    if count <= 1:
        return [_run_one(source, path, p, data, config, start_ms, end_ms) for p in grid]
    with ProcessPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(_run_one, source, path, p, data, config, start_ms, end_ms) for p in grid
        ]
        return [future.result() for future in futures]


def rank(runs: Sequence[SweepRun], metric: str) -> list[SweepRun]:
    """Best first by `metric`; runs where it is undefined come last."""
    if metric not in RANKABLE:
        raise UserError(f"--rank takes one of {', '.join(RANKABLE)}, got {metric!r}")
    bigger_is_better = RANKABLE[metric]

    def value(run: SweepRun) -> tuple[bool, float]:
        figure = run.summary.to_json()[metric]
        if figure is None:
            return True, 0.0
        number = float(figure)
        return False, -number if bigger_is_better else number

    return sorted(runs, key=value)
