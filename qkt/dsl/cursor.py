"""The parser's footing: a position in the token list, `expect`, error reports and recovery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from qkt.dsl.errors import DslError
from qkt.dsl.nodes import Span
from qkt.dsl.tokens import SYNC_WORDS, Token, TokenKind

_OPENERS: Final = frozenset("([{")
_CLOSERS: Final = frozenset(")]}")


class Recover(Exception):
    """A syntax error has been reported: unwind to the nearest place that can resynchronise."""


def span(tok: Token) -> Span:
    """Where `tok` starts."""
    return Span(tok.line, tok.col)


def adjacent(first: Token, second: Token) -> bool:
    """`first` ends where `second` starts: written together, with no gap between them."""
    return first.line == second.line and first.col + len(first.text) == second.col


class Cursor:
    """Reads tokens left to right; keeps every error found and the nesting needed to recover."""

    def __init__(self, tokens: list[Token], path: str) -> None:
        if not tokens or tokens[-1].kind is not TokenKind.EOF:
            raise ValueError("the token list must end with EOF")
        self.tokens = tokens
        self.path = path
        self.pos = 0
        self.errors: list[DslError] = []
        self._reported: set[tuple[int, int]] = set()
        # Brackets opened and CASEs entered but not yet closed: after an error, recovery skips
        # to the same level, so that a `,` or a `WHEN` inside them is not taken for a new start.
        self.open = 0
        self.cases = 0

    # -- reading

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def at(self, *words: str) -> bool:
        """True if the current token is one of the keywords or punctuation `words`."""
        return any(self.tok.is_(word) for word in words)

    def advance(self) -> Token:
        tok = self.tok
        if tok.kind is not TokenKind.EOF:
            self.pos += 1
        if tok.kind is TokenKind.PUNCT:
            if tok.text in _OPENERS:
                self.open += 1
            elif tok.text in _CLOSERS:
                self.open = max(0, self.open - 1)
        return tok

    def accept(self, word: str) -> Token | None:
        return self.advance() if self.at(word) else None

    def expect(self, word: str, what: str | None = None) -> Token:
        """Consume the keyword or punctuation `word`, or report `expected <what>, got ...`."""
        if self.at(word):
            return self.advance()
        raise self.fail(what or (word if word[0].isalpha() else f"'{word}'"))

    def expect_one(self, words: tuple[str, ...], what: str) -> Token:
        """Consume one of `words`, or report `expected <what>, got ...`."""
        if self.at(*words):
            return self.advance()
        raise self.fail(what)

    def expect_ident(self, what: str) -> Token:
        if self.tok.kind is TokenKind.IDENT:
            return self.advance()
        raise self.fail(what)

    # -- errors

    def fail(self, expected: str) -> Recover:
        """Report `expected X, got 'Y'` at the current token; the caller raises the result."""
        self.report(self.tok, f"expected {expected}, got {self.tok.describe()}")
        return Recover()

    def report(self, where: Token | Span, message: str) -> None:
        """Keep one error per position; an ERROR token was already reported by the lexer."""
        if isinstance(where, Token):
            if where.kind is TokenKind.ERROR:
                return
            where = span(where)
        if (where.line, where.col) in self._reported:
            return
        self._reported.add((where.line, where.col))
        self.errors.append(DslError(message, self.path, where.line, where.col))

    # -- recovery

    def sync(self, stop: Callable[[Token, int, int], bool] | None = None) -> None:
        """Skip to a section or rule start (`DEFAULTS SYMBOLS LET RULES WHEN FOR`), or to a token
        for which `stop(token, depth, cases)` holds; depth and cases count from the error's level.
        """
        depth, cases = self.open, self.cases
        while True:
            tok = self.tok
            if tok.kind is TokenKind.EOF:
                break
            if tok.kind is TokenKind.KEYWORD and tok.word in SYNC_WORDS:
                if tok.word != "WHEN" or cases == 0:
                    break
            if stop is not None and stop(tok, depth, cases):
                break
            if tok.kind is TokenKind.PUNCT and tok.text in _OPENERS:
                depth += 1
            elif tok.kind is TokenKind.PUNCT and tok.text in _CLOSERS:
                depth = max(0, depth - 1)
            elif tok.is_("CASE"):
                cases += 1
            elif tok.is_("END"):
                cases = max(0, cases - 1)
            self.pos += 1
        self.open = 0
        self.cases = 0

    def sync_item(self) -> None:
        """Skip to the next `,` of a declaration list (SYMBOLS, LET) or to a section start."""
        self.sync(lambda tok, depth, cases: depth == 0 and cases == 0 and tok.is_(","))
