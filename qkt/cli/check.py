"""`qkt check FILE...`: parse and compile only; every mistake of every file, then a total."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qkt.dsl import CompileError, compile_bytes, read_source


def check_command(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE", help="The .qkt files to check.", show_default=False),
    ],
) -> None:
    """Parse and compile .qkt files without running them.

    A valid file prints one line: FILE: ok (strategy NAME vN, S streams, R rules).

    Each mistake prints on stderr as FILE:LINE:COL: message, with the line and a caret.

    Then the total N errors. Exit status: 0 if every file is valid, 1 otherwise.
    """
    # Read everything first: a missing file is a usage mistake, reported alone (`qkt: error:`).
    sources = [(str(path), read_source(path)) for path in files]
    errors = 0
    for name, data in sources:
        try:
            program = compile_bytes(data, name)
        except CompileError as error:
            errors += len(error.errors)
            for each in error.errors:
                typer.echo(each.render(error.source), err=True)
            continue
        streams, rules = len(program.streams), len(program.rules)
        typer.echo(
            f"{name}: ok (strategy {program.name} v{program.version}, "
            f"{_count(streams, 'stream')}, {_count(rules, 'rule')})"
        )
    if errors:
        typer.echo(_count(errors, "error"), err=True)
        raise typer.Exit(1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
