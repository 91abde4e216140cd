"""`qkt daemon` (run in the foreground), `qkt daemon stop`, `qkt daemon status`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import typer

from qkt.cli.options import JsonOption, StateDirOption, VersionOption
from qkt.cli.remote import connect, remember_state, resolve_state

STOP_WAIT_S: Final = 120.0  # daemon-side every step is bounded; this bounds the sum

app = typer.Typer(
    name="daemon",
    help="Run the daemon in the foreground, or stop / inspect the running one.",
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
def daemon(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    load_dir: Annotated[
        Path | None,
        typer.Option(
            "--load-dir",
            help="Deploy every *.qkt of DIR at start, named after the file's stem.",
            show_default=False,
        ),
    ] = None,
    control_port: Annotated[
        int | None,
        typer.Option(
            "--control-port",
            help="Control plane port on 127.0.0.1 (0: any free one).",
            show_default=False,
        ),
    ] = None,
    bind_workers: Annotated[
        str | None,
        typer.Option(
            "--bind-workers",
            metavar="ADDR",
            help="Address workers' status servers bind (default 127.0.0.1).",
            show_default=False,
        ),
    ] = None,
    worker_ports: Annotated[
        str | None,
        typer.Option(
            "--worker-ports",
            metavar="LO-HI",
            help="Take workers' status ports from this range (default: any free port).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="TOML settings file; flags win over it.",
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            help="Simulated market seconds per wall second (default 1).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed of the simulated market (default 0).", show_default=False
        ),
    ] = None,
    spawn: Annotated[
        Literal["fork", "exec"] | None,
        typer.Option(
            "--spawn",
            metavar="fork|exec",
            help="fork: from a preloaded fork server "
            "(default); exec: a new interpreter per worker.",
            show_default=False,
        ),
    ] = None,
    log_max_mb: Annotated[
        float | None,
        typer.Option(
            "--log-max-mb",
            metavar="MB",
            help="Rotate each log at this size (default 50; 0: never).",
            show_default=False,
        ),
    ] = None,
    log_backups: Annotated[
        int | None,
        typer.Option(
            "--log-backups",
            metavar="N",
            help="Rotated copies kept per log (default 5).",
            show_default=False,
        ),
    ] = None,
    worker_module: Annotated[
        str | None, typer.Option("--worker-module", hidden=True)
    ] = None,  # tests run the daemon with a fake worker
    version: VersionOption = False,  # the container's `docker run IMAGE --version` lands here
) -> None:
    """Run the daemon in the foreground until Ctrl-C, SIGTERM or `qkt daemon stop`."""
    remember_state(ctx, state_dir)
    if ctx.invoked_subcommand is not None:
        return
    from qkt.control.app import create_app  # the daemon's imports only when it runs
    from qkt.supervisor.config import load_config
    from qkt.supervisor.daemon import Daemon

    state = resolve_state(ctx, state_dir)
    flags = {
        "daemon.load_dir": str(load_dir.absolute()) if load_dir is not None else None,
        "daemon.control_port": control_port,
        "daemon.spawn": spawn,
        "workers.bind": bind_workers,
        "workers.ports": worker_ports,
        "workers.module": worker_module,
        "sim.speed": speed,
        "sim.seed": seed,
        "logs.max_mb": log_max_mb,
        "logs.backups": log_backups,
    }
    daemon_config = load_config(state, config, flags)
    # The daemon's log and every worker's (they inherit this environment) rotate alike.
    daemon_config.logs.export(os.environ)
    code = Daemon(daemon_config, create_app, announce=typer.echo).run()
    raise typer.Exit(code)


@app.command("stop")
def stop(ctx: typer.Context, state_dir: StateDirOption = None) -> None:
    """Stop the running daemon: every worker gracefully, then the daemon itself."""
    import time

    from qkt.errors import QktError
    from qkt.osproc import read_int_file, running

    state = resolve_state(ctx, state_dir)
    with connect(ctx, state_dir) as client:
        pid = client.health().pid
        client.shutdown()
    deadline = time.monotonic() + STOP_WAIT_S
    # daemon.pid goes last in the daemon's shutdown; then the process itself must be gone.
    while read_int_file(state.daemon_pid) == pid or running(pid):
        if time.monotonic() > deadline:
            raise QktError(f"the daemon (pid {pid}) is still stopping after {STOP_WAIT_S:g} s")
        time.sleep(0.1)
    typer.echo(f"daemon stopped (pid {pid})")


@app.command("status")
def status(ctx: typer.Context, state_dir: StateDirOption = None, json: JsonOption = False) -> None:
    """pid, version, uptime, control port, state dir, strategy count and hub keys."""
    from qkt.cli.render import duration, iso_time, print_json, print_table
    from qkt.records import to_json

    with connect(ctx, state_dir) as client:
        health = client.health()
        keys = client.hub()
        channels = client.notify()
    report: dict[str, Any] = {k: v for k, v in to_json(health).items() if k != "status"}
    report["hub_keys"] = [to_json(key) for key in keys]
    report["notify"] = [to_json(channel) for channel in channels]
    if json:
        print_json(report)
        return
    typer.echo(
        f"daemon     pid {health.pid}, qkt {health.version}, up {duration(health.uptime_ms)}"
    )
    typer.echo(f"control    http://127.0.0.1:{health.control_port}")
    typer.echo(f"state dir  {health.state_dir}")
    typer.echo(f"strategies {health.strategies} ({health.spawn} spawn)")
    if keys:
        typer.echo("")
        print_table(
            ["KEY", "SUBSCRIBERS", "CANDLES", "LAST CLOSE", "FEED"],
            [
                [
                    k.key,
                    k.subscribers,
                    k.candles_published,
                    iso_time(k.last_close_ts),
                    k.feed_state + (" (stale)" if k.stale else ""),
                ]
                for k in keys
            ],
        )
    if channels:
        typer.echo("")
        print_table(
            ["CHANNEL", "KIND", "STATE", "SENT", "FAILED", "DROPPED", "PENDING", "LAST ERROR"],
            [
                [c.name, c.kind, c.state, c.sent, c.failed, c.dropped, c.pending, c.last_error]
                for c in channels
            ],
        )
