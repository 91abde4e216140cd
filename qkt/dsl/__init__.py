"""The .qkt language: lexer, parser, checker and compiler to a `Program`.

`compile_source`, `compile_bytes` and `compile_file` return a Program or raise CompileError with
every mistake of the file, in source order; they never raise anything else for bad input.
"""

from __future__ import annotations

import os
from typing import Any

from qkt.dsl.checker import check
from qkt.dsl.compiler import ExpansionError, compile_tree
from qkt.dsl.errors import CompileError, DslError
from qkt.dsl.lexer import tokenize
from qkt.dsl.parser import parse
from qkt.dsl.program import Program
from qkt.dsl.summary import summarize as _summarize
from qkt.errors import NotFoundError, UserError
from qkt.inputs import MAX_SOURCE_BYTES  # one limit for every reader of a strategy file

__all__ = [
    "CompileError",
    "DslError",
    "Program",
    "compile_bytes",
    "compile_file",
    "compile_source",
    "read_source",
    "summarize",
]


def compile_source(text: str, path: str = "<string>") -> Program:
    """Compile .qkt source text; `path` names the file in error messages."""
    tokens, errors = tokenize(text, path)
    tree, syntax_errors = parse(tokens, path)
    errors += syntax_errors
    errors += check(tree, path)
    if errors:
        raise CompileError(_in_source_order(errors), text)
    try:
        return compile_tree(tree, path)
    except ExpansionError as error:
        raise CompileError([error.error], text) from None


def compile_bytes(data: bytes, path: str) -> Program:
    """Compile the raw bytes of a .qkt file (UTF-8, an optional BOM is ignored)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        # Point at the first bad byte; everything before it decodes, so columns count characters.
        before = data[: error.start]
        line_start = before.rfind(b"\n") + 1
        line = before.count(b"\n") + 1
        col = len(before[line_start:].decode("utf-8")) + 1
        bad = data[error.start]
        message = f"not valid UTF-8 (byte 0x{bad:02x}): save the file as UTF-8"
        source = data.decode("utf-8", errors="replace")
        raise CompileError([DslError(message, path, line, col)], source) from None
    return compile_source(text.removeprefix("\ufeff"), path)


def read_source(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a .qkt file; a missing or unreadable file is a clear QktError, not OSError."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            data = file.read(MAX_SOURCE_BYTES + 1)  # a bounded read: never a whole big file
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise UserError(f"{name} is a directory, not a .qkt file") from None
    except PermissionError:
        raise UserError(f"cannot read {name}: permission denied") from None
    except OSError as error:
        raise UserError(f"cannot read {name}: {error.strerror or error}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise UserError(
            f"{name} is larger than {MAX_SOURCE_BYTES // 1024} KiB: not a .qkt strategy"
        )
    return data


def compile_file(path: str | os.PathLike[str]) -> Program:
    """Read and compile a .qkt file; errors name it as given."""
    return compile_bytes(read_source(path), os.fspath(path))


def summarize(program: Program) -> dict[str, Any]:
    """A JSON-able summary: name, version, streams and keys, rules, slot count."""
    return _summarize(program)


def _in_source_order(errors: list[DslError]) -> list[DslError]:
    """Sorted by position; one error per position (the first found explains it best)."""
    unique: dict[tuple[int, int], DslError] = {}
    for error in errors:
        unique.setdefault((error.line, error.col), error)
    return sorted(unique.values(), key=lambda error: (error.line, error.col))
