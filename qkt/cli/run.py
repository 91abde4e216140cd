"""`qkt run FILE`: one strategy in the foreground, no daemon: its own in-process CandleHub and
the same worker code a daemon spawns (`WorkerRunner`), in one event loop. One code path, two
hosts.

The hub binds tcp on 127.0.0.1 (never the state dir's ipc sockets, which a daemon may own); the
journal, log file and lock are the strategy's usual ones in the state dir, so a daemon and a
`qkt run` never run one name twice. Stdout gets a banner, `QKT_PORT=<port>` once the status port
answers, one line per fill and a summary at the end; logs go to the log file (warnings also to
stderr).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qkt.cli.options import StateDirOption

if TYPE_CHECKING:
    from qkt.dsl import Program
    from qkt.engine import EngineConfig

BalanceOption = Annotated[
    str, typer.Option("--balance", help="Starting balance of the paper account.")
]
FeeOption = Annotated[str, typer.Option("--fee-bps", help="Fee on each fill's notional, in bps.")]
SlippageOption = Annotated[
    str, typer.Option("--slippage-bps", help="Slippage against each fill, in bps.")
]


def run_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The .qkt strategy to run.")],
    port: Annotated[int, typer.Option("--port", help="Status port (0: any free one).")] = 0,
    bind: Annotated[str, typer.Option("--bind", help="Address of the status port.")] = "127.0.0.1",
    port_file: Annotated[
        Path | None, typer.Option("--port-file", help="Also write the bound port to PATH.")
    ] = None,
    no_observe: Annotated[bool, typer.Option("--no-observe", help="Serve no status port.")] = False,
    speed: Annotated[
        float, typer.Option("--speed", help="Simulated market seconds per wall second.")
    ] = 1.0,
    sim: Annotated[
        bool, typer.Option("--sim", help="Put every stream on the simulated market.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated market.")] = 0,
    balance: BalanceOption = "10000",
    fee_bps: FeeOption = "0",
    slippage_bps: SlippageOption = "0",
    name: Annotated[
        str | None, typer.Option("--as", help="Strategy name (default: the file's stem).")
    ] = None,
    state: StateDirOption = None,
) -> None:
    """Run one strategy in the foreground, without a daemon; Ctrl-C stops it cleanly.

    Prints QKT_PORT=<port> once the status port answers, then one line per fill.
    """
    from qkt.cli.foreground import run_foreground  # the engine, hub and worker: only to run

    run_foreground(
        file,
        port=port,
        bind=bind,
        port_file=port_file,
        no_observe=no_observe,
        speed=speed,
        sim=sim,
        seed=seed,
        balance=balance,
        fee_bps=fee_bps,
        slippage_bps=slippage_bps,
        name=name,
        state=state,
    )


def account_flags(balance: str, fee_bps: str, slippage_bps: str) -> EngineConfig:
    """The paper account the flags describe (`qkt.cli.foreground.account_flags`)."""
    from qkt.cli.foreground import account_flags as build

    return build(balance, fee_bps, slippage_bps)


def compile_or_exit(file: Path) -> Program:
    """Compile FILE; on DSL errors print every one on stderr and exit 1."""
    from qkt.cli.foreground import compile_or_exit as compile_it

    return compile_it(file)
