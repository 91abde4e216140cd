"""`main()`: the one place where errors become `qkt: error: ...` and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from qkt.errors import QktError


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; a QktError prints one line on stderr and exits with its code (1 by default).

    Usage mistakes (bad flags) are click's: usage text and exit 2.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    if args == ["--version"]:
        # A health check or a script asking the version needs no command line parser at all.
        from qkt import __version__

        print(f"qkt {__version__}")
        return
    import typer

    from qkt.cli.app import build

    command = typer.main.get_command(build())  # each command is built when it is run
    try:
        command.main(args=args, prog_name="qkt")
    except QktError as error:
        print(f"qkt: error: {error.message}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
