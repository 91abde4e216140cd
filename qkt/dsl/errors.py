"""One positioned error type for the language (tomli style): `file:line:col: message`.

Rendering is bounded and safe to print, whatever the file holds:
- the source is split into lines once per file, not once per error;
- at most MAX_RENDERED errors are shown with their line, then `and N more errors`;
- control characters (terminal escape sequences, bidi overrides) are shown escaped (`\\x1b`),
  never sent to the terminal as they are;
- lines and messages are shown only for files named `*.qkt`: a file that is not a strategy
  (deploying `/etc/shadow` by mistake, or on purpose with a stolen token) gets its error count
  and the first position, never a word of its content.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from qkt.errors import UserError

MAX_RENDERED: Final = 50  # errors shown with their source line (the rest are counted)
MAX_LISTED: Final = 200  # errors listed in the JSON envelope's `errors`
SOURCE_SUFFIX: Final = ".qkt"
# C0 and C1 controls but tab, DEL, and the bidi overrides of "trojan source" lines.
_UNPRINTABLE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x1b`, `\\u202e`): safe to print as it is."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def shows_source(path: str) -> bool:
    """Whether errors in `path` may quote it: a .qkt file, or text given directly (`<string>`)."""
    return path.endswith(SOURCE_SUFFIX) or (path.startswith("<") and path.endswith(">"))


@functools.lru_cache(maxsize=2)
def _source_lines(source: str) -> tuple[str, ...]:
    # Lines end at LF only, as in the lexer (`splitlines` would also split at FF, NEL...).
    # Cached: every error of one file renders from one split (Python caches a str's hash).
    return tuple(source.split("\n"))


@dataclass(frozen=True, slots=True)
class DslError:
    """A mistake at a 1-based line and column (a column counts characters; a tab is one)."""

    message: str
    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return printable(f"{self.path}:{self.line}:{self.col}: {self.message}")

    def render(self, source: str | None) -> str:
        """`file:line:col: message`, then the source line and a caret under the column."""
        text = str(self)
        if source is None or not shows_source(self.path):
            return text
        lines = _source_lines(source)
        if 1 <= self.line <= len(lines):
            line = lines[self.line - 1].removesuffix("\r")
            before = printable(line[: self.col - 1])
            # Keep tabs so that the caret lines up under the same character in a terminal.
            pad = "".join("\t" if ch == "\t" else " " for ch in before)
            text += f"\n{printable(line)}\n{pad}^"
        return text


class CompileError(UserError):
    """A file that does not compile: every DslError found in one pass, in source order."""

    code = "dsl_error"
    http_status = 422

    def __init__(self, errors: Sequence[DslError], source: str | None = None) -> None:
        if not errors:
            raise ValueError("CompileError needs at least one DslError")
        first = errors[0]
        if not shows_source(first.path):
            errors, source = [_undisclosed(first, len(errors))], None
        self.errors = tuple(errors)
        self.source = source
        super().__init__(
            str(self.errors[0]),
            line=first.line,
            col=first.col,
            file=first.path,
            errors=[str(error) for error in self.errors[:MAX_LISTED]],
            error_count=len(self.errors),
        )

    def to_json(self) -> dict[str, Any]:
        """The envelope, plus `rendered`: every error with its source line and caret, so that a
        client of the daemon (`qkt deploy`) can show them as `qkt check` does."""
        body = super().to_json()
        body["error"]["rendered"] = self.render()
        return body

    def render(self) -> str:
        """The first MAX_RENDERED errors with their source line and caret, then `N errors`."""
        parts = [error.render(self.source) for error in self.errors[:MAX_RENDERED]]
        count = len(self.errors)
        if count > MAX_RENDERED:
            more = count - MAX_RENDERED
            parts.append(f"and {more} more error{'s' if more != 1 else ''}")
        parts.append(f"{count} error{'s' if count != 1 else ''}")
        return "\n".join(parts)


def _undisclosed(first: DslError, count: int) -> DslError:
    errors = f"{count} error{'s' if count != 1 else ''}"
    return DslError(
        f"does not compile ({errors}); not a {SOURCE_SUFFIX} file, so its content is not shown "
        f"(rename it to *{SOURCE_SUFFIX} to see the errors)",
        first.path,
        first.line,
        first.col,
    )
