"""`python -m qkt.worker SPEC_JSON|@SPEC_FILE`: the spawn entry point (never typed by users)."""

from __future__ import annotations

import sys
from pathlib import Path

from qkt import proctitle
from qkt.atomic import read_private
from qkt.worker.entry import run_worker
from qkt.worker.exitcodes import EXIT_BAD_SPEC
from qkt.worker.spec import SpecError, WorkerSpec


def main(argv: list[str]) -> int:
    """Parse the spec (the one argument) and run the worker; its exit code."""
    if len(argv) != 1:
        print("usage: python -m qkt.worker SPEC_JSON", file=sys.stderr)
        return EXIT_BAD_SPEC
    try:
        spec = WorkerSpec.from_json(_spec_text(argv[0]))
    except SpecError as error:
        # No log file yet (it is named in the spec): stderr is all there is.
        print(f"qkt worker: {error}", file=sys.stderr)
        return EXIT_BAD_SPEC
    # `ps` would show the whole JSON spec; the fork server's workers are named the same way.
    proctitle.set_title(proctitle.worker(spec.name))
    return run_worker(spec)


def _spec_text(argument: str) -> bytes | str:
    """The spec itself, or `@PATH`: the file the daemon wrote it to (too big for an argument)."""
    if not argument.startswith("@"):
        return argument
    try:
        return read_private(Path(argument[1:]))
    except OSError as error:
        raise SpecError(f"cannot read the spec file {argument[1:]}: {error.strerror}") from None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
