"""`qkt run`'s implementation: the in-process hub and the worker runner (see `qkt.cli.run`).

Kept apart from the command's signature so that `qkt --help` and the read-only commands never
import the engine, the hub or FastAPI.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import replace
from pathlib import Path

import typer

from qkt.atomic import write_atomic
from qkt.cli.options import state_dir
from qkt.dsl import CompileError, Program, compile_bytes
from qkt.engine import EngineConfig, Fill
from qkt.errors import UserError
from qkt.hub import CandleHub, HubConfig
from qkt.inputs import parse_balance, parse_bps, read_strategy_file
from qkt.log import configure
from qkt.market.feed import FeedOptions
from qkt.market.registry import open_feed
from qkt.money import to_str
from qkt.osproc import stderr_warnings
from qkt.paths import StateDir, check_name
from qkt.worker.lifeline import Lifeline
from qkt.worker.report import fill_line
from qkt.worker.runner import RunnerHooks, RunSummary, WorkerRunner
from qkt.worker.spec import WorkerSpec


def run_foreground(
    file: Path,
    *,
    port: int,
    bind: str,
    port_file: Path | None,
    no_observe: bool,
    speed: float,
    sim: bool,
    seed: int,
    balance: str,
    fee_bps: str,
    slippage_bps: str,
    name: str | None,
    state: Path | None,
) -> None:
    """Run FILE in this process until Ctrl-C; print the banner, fills and a summary."""
    if speed <= 0:
        raise UserError(f"--speed must be greater than 0, got {speed:g}")
    account_flags(balance, fee_bps, slippage_bps)
    program, source = _read_and_compile(file)
    if sim:
        program = program.with_broker("SIM")
    strategy = check_name(name if name is not None else file.stem)
    root = state_dir(state).ensure()
    _configure_logging(root.log_file(strategy))
    spec = WorkerSpec(
        name=strategy,
        file=str(file.resolve()),
        source=source,
        state_dir=str(root.root),
        hub_pub="",  # filled in once the in-process hub is bound
        hub_snapshot="",
        bind=bind,
        port=port,
        observe=not no_observe,
        balance=balance,
        fee_bps=fee_bps,
        slippage_bps=slippage_bps,
        sim=sim,
    )
    streams = ", ".join(f"{decl.alias} = {decl.key}" for decl in program.streams)
    typer.echo(f"qkt run: strategy {program.name} v{program.version} as {strategy}")
    typer.echo(f"streams: {streams}")
    typer.echo(f"state: {root.root}")
    options = FeedOptions(seed=seed, speed=speed)
    try:
        summary = asyncio.run(_host(spec, program, root, options, port_file))
    finally:
        if port_file is not None:
            port_file.unlink(missing_ok=True)
    typer.echo(
        f"stopped: {summary.trades} trades, realized {to_str(summary.realized)}, "
        f"equity {to_str(summary.equity)}"
    )


async def _host(
    spec: WorkerSpec, program: Program, root: StateDir, options: FeedOptions, port_file: Path | None
) -> RunSummary:
    lifeline = Lifeline()
    lifeline.install()
    try:
        hub = CandleHub(lambda broker: open_feed(broker, options), root, HubConfig(transport="tcp"))
        async with hub:
            for key in program.keys:
                hub.acquire(key)
            endpoints = hub.endpoints
            bound = replace(spec, hub_pub=endpoints.pub, hub_snapshot=endpoints.snapshot)

            def ready(port: int | None) -> None:
                if port is None:
                    return
                if port_file is not None:
                    write_atomic(port_file, f"{port}\n")
                typer.echo(f"QKT_PORT={port}")
                sys.stdout.flush()

            def filled(fill: Fill) -> None:
                typer.echo(fill_line(fill))
                sys.stdout.flush()

            runner = WorkerRunner(bound, program, lifeline, RunnerHooks(ready, filled))
            return await runner.run()
    finally:
        await lifeline.aclose()


def compile_or_exit(file: Path) -> Program:
    """Compile FILE; on DSL errors print every one on stderr and exit 1."""
    return _read_and_compile(file)[0]


def _read_and_compile(file: Path) -> tuple[Program, str]:
    """FILE compiled, and the text that was (read once); DSL errors on stderr, exit 1."""
    data = read_strategy_file(str(file))  # the daemon's check: a folder is 404 there too
    try:
        return compile_bytes(data, str(file)), data.decode("utf-8")
    except CompileError as error:
        typer.echo(error.render(), err=True)
        raise typer.Exit(1) from None


def account_flags(balance: str, fee_bps: str, slippage_bps: str) -> EngineConfig:
    """The paper account the flags describe, checked as a deploy checks it (`qkt.inputs`): a
    balance greater than 0, fees and slippage from 0 to 10000 bps."""
    return EngineConfig(
        balance=parse_balance(balance, "--balance"),
        fee_bps=parse_bps(fee_bps, "--fee-bps"),
        slippage_bps=parse_bps(slippage_bps, "--slippage-bps"),
    )


def _configure_logging(file: Path) -> None:
    configure(file=file)
    logging.getLogger().addHandler(stderr_warnings())
