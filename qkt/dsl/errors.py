"""One positioned error type for the language (tomli style): `file:line:col: message`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qkt.errors import UserError


@dataclass(frozen=True, slots=True)
class DslError:
    """A mistake at a 1-based line and column (a column counts characters; a tab is one)."""

    message: str
    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    def render(self, source: str | None) -> str:
        """`file:line:col: message`, then the source line and a caret under the column."""
        text = str(self)
        if source is None:
            return text
        # Lines end at LF only, as in the lexer (`splitlines` would also split at FF, NEL...).
        lines = source.split("\n")
        if 1 <= self.line <= len(lines):
            line = lines[self.line - 1].removesuffix("\r")
            # Keep tabs so that the caret lines up under the same character in a terminal.
            pad = "".join("\t" if ch == "\t" else " " for ch in line[: self.col - 1])
            text += f"\n{line}\n{pad}^"
        return text


class CompileError(UserError):
    """A file that does not compile: every DslError found in one pass, in source order."""

    code = "dsl_error"
    http_status = 422

    def __init__(self, errors: Sequence[DslError], source: str | None = None) -> None:
        if not errors:
            raise ValueError("CompileError needs at least one DslError")
        self.errors = tuple(errors)
        self.source = source
        first = self.errors[0]
        super().__init__(
            str(first),
            line=first.line,
            col=first.col,
            file=first.path,
            errors=[str(error) for error in self.errors],
        )

    def to_json(self) -> dict[str, Any]:
        """The envelope, plus `rendered`: every error with its source line and caret, so that a
        client of the daemon (`qkt deploy`) can show them as `qkt check` does."""
        body = super().to_json()
        body["error"]["rendered"] = self.render()
        return body

    def render(self) -> str:
        """Every error with its source line and caret, then `N errors`."""
        parts = [error.render(self.source) for error in self.errors]
        count = len(self.errors)
        parts.append(f"{count} error{'s' if count != 1 else ''}")
        return "\n".join(parts)
