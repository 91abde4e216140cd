"""`main()`: the one place where errors become `qkt: error: ...` and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from qkt.cli.app import app
from qkt.errors import QktError


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; a QktError prints one line on stderr and exits with its code (1 by default).

    Usage mistakes (bad flags) are click's: usage text and exit 2.
    """
    command = typer.main.get_command(app)
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name="qkt")
    except QktError as error:
        print(f"qkt: error: {error.message}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
