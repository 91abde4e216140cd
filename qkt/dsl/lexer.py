"""Text -> tokens. Never raises: bad input becomes a positioned DslError plus an ERROR token."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

from qkt.dsl.errors import DslError
from qkt.dsl.tokens import ESCAPES, KEYWORDS, PUNCTUATION, Token, TokenKind

_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# No leading sign (minus is an operator) and no `.5`: dsl.md, "Lexical rules".
_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_SPACE: Final = frozenset(" \t\r")
# Beyond the default decimal context the engine's arithmetic would overflow on the literal itself.
_MAX_EXPONENT: Final = 999_999

# Characters people bring from other languages, with what to write instead.
_HINTS: Final[dict[str, str]] = {
    "&&": "use AND",
    "&": "use AND",
    "||": "use OR",
    "|": "use OR",
    "!": "use NOT, or != to compare",
    '"': "strings use single quotes",
}


def tokenize(text: str, path: str) -> tuple[list[Token], list[DslError]]:
    """All tokens of `text` (ending with EOF) and every lexical error, in source order."""
    return _Lexer(text, path).run()


def _quote(text: str) -> str:
    return f"'{text}'" if text.isprintable() else repr(text)


class _Lexer:
    """One pass over the text; `line_start` is the offset of the current line's first char."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.tokens: list[Token] = []
        self.errors: list[DslError] = []

    def run(self) -> tuple[list[Token], list[DslError]]:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\n":
                self.newline(self.pos)
                self.pos += 1
            elif ch in _SPACE:
                self.pos += 1
            elif text.startswith("--", self.pos) or ch == "#":
                if ch == "#":
                    self.error(self.pos, "unexpected '#': comments start with --")
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                self.block_comment()
            elif ch == "'":
                self.string()
            elif ch.isascii() and (ch.isalpha() or ch == "_"):
                self.word()
            elif "0" <= ch <= "9":
                self.number()
            else:
                self.punctuation()
        self.tokens.append(self.eof())
        return self.tokens, self.errors

    # -- helpers

    def col(self, pos: int) -> int:
        return pos - self.line_start + 1

    def newline(self, pos: int) -> None:
        self.line += 1
        self.line_start = pos + 1

    def emit(self, kind: TokenKind, start: int, end: int) -> None:
        self.tokens.append(Token(kind, self.text[start:end], self.line, self.col(start)))
        self.pos = end

    def error(self, pos: int, message: str) -> None:
        self.errors.append(DslError(message, self.path, self.line, self.col(pos)))

    def eof(self) -> Token:
        # Right after the last token, so that "got end of file" points at where text is missing.
        if not self.tokens:
            return Token(TokenKind.EOF, "", 1, 1)
        last = self.tokens[-1]
        return Token(TokenKind.EOF, "", last.line, last.col + len(last.text))

    # -- token rules

    def block_comment(self) -> None:
        start = self.pos
        end = self.text.find("*/", start + 2)
        if end < 0:
            self.error(start, "unterminated block comment: /* has no closing */")
            end = len(self.text)
        else:
            end += 2
        newline = self.text.find("\n", start, end)
        while newline >= 0:
            self.newline(newline)
            newline = self.text.find("\n", newline + 1, end)
        self.pos = end

    def word(self) -> None:
        match = _WORD.match(self.text, self.pos)
        assert match is not None
        after_dot = bool(self.tokens) and self.tokens[-1].is_(".")
        # After a `.` any word is a field name (`btc.close`, `POSITION.btc`).
        kind = TokenKind.IDENT
        if not after_dot and match.group().upper() in KEYWORDS:
            kind = TokenKind.KEYWORD
        self.emit(kind, self.pos, match.end())

    def number(self) -> None:
        match = _NUMBER.match(self.text, self.pos)
        assert match is not None
        try:
            in_range = abs(Decimal(match.group()).adjusted()) <= _MAX_EXPONENT
        except InvalidOperation:
            in_range = False
        if in_range:
            self.emit(TokenKind.NUMBER, self.pos, match.end())
        else:
            self.error(self.pos, f"number out of range: {match.group()}")
            self.emit(TokenKind.ERROR, self.pos, match.end())

    def string(self) -> None:
        start = self.pos
        pos = start + 1
        text = self.text
        while pos < len(text) and text[pos] not in "'\n":
            if text[pos] == "\\":
                escape = text[pos + 1 : pos + 2]
                if escape in ("", "\n"):
                    break  # reported as an unterminated string below
                if escape not in ESCAPES:
                    shown = _quote("\\" + escape)
                    self.error(pos, f"bad escape {shown} in string: use \\' \\\\ \\n or \\t")
                pos += 1
            pos += 1
        if pos < len(text) and text[pos] == "'":
            self.emit(TokenKind.STRING, start, pos + 1)
        else:
            self.error(start, "unterminated string: a string ends with ' on the same line")
            self.emit(TokenKind.ERROR, start, pos)

    def punctuation(self) -> None:
        text = self.text
        for punct in PUNCTUATION:
            if text.startswith(punct, self.pos):
                self.emit(TokenKind.PUNCT, self.pos, self.pos + len(punct))
                return
        start = self.pos
        ch = text[start]
        if ch == '"':
            # Skip the whole double-quoted string so that its words do not cascade into errors.
            close = text.find('"', start + 1)
            newline = text.find("\n", start)
            end = close + 1 if close >= 0 and (newline < 0 or close < newline) else start + 1
        else:
            end = start + 1
            while end < len(text) and text[end] == ch:
                end += 1
        bad = text[start:end] if ch != '"' else '"'
        hint = _HINTS.get(bad) or _HINTS.get(ch)
        what = f"unexpected {_quote(bad)}" if hint else f"unexpected character {_quote(ch)}"
        self.error(start, f"{what}: {hint}" if hint else what)
        self.emit(TokenKind.ERROR, start, end)
