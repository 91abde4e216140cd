"""The words of the language: TokenKind, Token and the reserved KEYWORDS (dsl.md, lexical rules)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final


class TokenKind(Enum):
    """What a token is; keywords and punctuation are told apart by `Token.word`."""

    IDENT = "identifier"
    KEYWORD = "keyword"
    NUMBER = "number"
    STRING = "string"
    PUNCT = "punctuation"
    # A bad character or an unterminated string: the lexer has already reported it, so the parser
    # recovers silently instead of piling a second error on the same mistake.
    ERROR = "error"
    EOF = "end of file"


# Reserved and case-insensitive (`when` = `WHEN`); `T` (in `@T-3`) is deliberately not one.
KEYWORDS: Final[frozenset[str]] = frozenset(
    """
    STRATEGY VERSION DEFAULTS SYMBOLS LET RULES WHEN THEN FOR EACH IN DO BUY SELL CLOSE CLOSE_ALL
    CANCEL CANCEL_ALL LOG MARKET LIMIT STOP TRAILING AT BY PCT SIZING RISK USD OF EQUITY BALANCE
    POSITION POSITION_AVG_PRICE OPEN_ORDERS BRACKET OCO TAKE PROFIT LOSS RR TIF GTC IOC FOK DAY GTD
    ORDER_TYPE STOP_LOSS TAKE_PROFIT EVERY CROSSES ABOVE BELOW BETWEEN AND OR NOT CASE ELSE END
    SINCE OPEN MAX MIN MEAN SUM ACCOUNT SYMBOL TRUE FALSE
    """.split()
)

# Longest first, so that `==` wins over `=` and `>=` over `>`.
PUNCTUATION: Final[tuple[str, ...]] = (
    "==",
    "!=",
    ">=",
    "<=",
    ">",
    "<",
    "=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "@",
    ":",
    "$",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    ".",
)

# Where the parser resynchronises after a syntax error (dsl.md, "Errors").
SYNC_WORDS: Final[frozenset[str]] = frozenset(
    {"DEFAULTS", "SYMBOLS", "LET", "RULES", "WHEN", "FOR"}
)
SECTION_WORDS: Final[tuple[str, ...]] = ("DEFAULTS", "SYMBOLS", "LET", "RULES")

ESCAPES: Final[dict[str, str]] = {"'": "'", "\\": "\\", "n": "\n", "t": "\t"}


@dataclass(frozen=True, slots=True)
class Token:
    """One token: `text` exactly as written, at a 1-based line and column."""

    kind: TokenKind
    text: str
    line: int
    col: int

    @property
    def word(self) -> str:
        """What the parser matches on: a keyword in upper case, anything else as written."""
        return self.text.upper() if self.kind is TokenKind.KEYWORD else self.text

    def is_(self, word: str) -> bool:
        """True for the keyword or punctuation `word` (keywords in any case)."""
        return self.kind in (TokenKind.KEYWORD, TokenKind.PUNCT) and self.word == word

    def describe(self) -> str:
        """How an error message quotes this token: `'x'`, or `end of file`."""
        if self.kind is TokenKind.EOF:
            return "end of file"
        if self.kind is TokenKind.STRING:
            return f"string {self.text}"
        return f"'{self.text}'"


def unquote(text: str) -> str:
    """The value of a string token (`'it\\'s'` -> `it's`); the lexer has checked its escapes."""
    out: list[str] = []
    chars = iter(text[1:-1])
    for ch in chars:
        out.append(ESCAPES.get(next(chars, ""), "") if ch == "\\" else ch)
    return "".join(out)
