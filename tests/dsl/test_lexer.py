"""The lexical rules of dsl.md: tokens, positions, comments, numbers, strings, bad characters."""

from __future__ import annotations

import pytest

from qkt.dsl.lexer import tokenize
from qkt.dsl.tokens import KEYWORDS, Token, TokenKind, unquote

# dsl.md, "Lexical rules", copied verbatim: the reserved words of the language.
DOC_KEYWORDS = """STRATEGY VERSION DEFAULTS SYMBOLS LET RULES WHEN THEN FOR EACH IN DO BUY SELL
  CLOSE CLOSE_ALL CANCEL CANCEL_ALL LOG MARKET LIMIT STOP TRAILING AT BY PCT SIZING RISK USD OF
  EQUITY BALANCE POSITION POSITION_AVG_PRICE OPEN_ORDERS BRACKET OCO TAKE PROFIT LOSS RR TIF GTC
  IOC FOK DAY GTD ORDER_TYPE STOP_LOSS TAKE_PROFIT EVERY CROSSES ABOVE BELOW BETWEEN AND OR NOT
  CASE ELSE END SINCE OPEN MAX MIN MEAN SUM ACCOUNT SYMBOL TRUE FALSE"""


def lex(text: str) -> list[Token]:
    tokens, errors = tokenize(text, "t.qkt")
    assert errors == []
    return tokens


def kinds_and_texts(text: str) -> list[tuple[TokenKind, str]]:
    return [(tok.kind, tok.text) for tok in lex(text)][:-1]  # without EOF


def test_the_keywords_are_exactly_those_of_the_language_reference() -> None:
    assert set(DOC_KEYWORDS.split()) == KEYWORDS
    assert "T" not in KEYWORDS  # `@T-3` is matched in any case, but T stays a usable name


def test_keywords_are_case_insensitive_and_identifiers_keep_their_case() -> None:
    tokens = lex("when When BTC btc")
    assert [tok.kind for tok in tokens[:2]] == [TokenKind.KEYWORD, TokenKind.KEYWORD]
    assert [tok.word for tok in tokens[:2]] == ["WHEN", "WHEN"]
    assert [(tok.kind, tok.text) for tok in tokens[2:4]] == [
        (TokenKind.IDENT, "BTC"),
        (TokenKind.IDENT, "btc"),
    ]


def test_after_a_dot_any_word_is_a_field_name() -> None:
    assert kinds_and_texts("btc.close POSITION.open") == [
        (TokenKind.IDENT, "btc"),
        (TokenKind.PUNCT, "."),
        (TokenKind.IDENT, "close"),
        (TokenKind.KEYWORD, "POSITION"),
        (TokenKind.PUNCT, "."),
        (TokenKind.IDENT, "open"),
    ]


@pytest.mark.parametrize("number", ["12", "0.5", "1e-3", "2.5E+10", "7e2"])
def test_numbers_are_single_tokens(number: str) -> None:
    assert kinds_and_texts(number) == [(TokenKind.NUMBER, number)]


def test_a_number_has_no_sign_and_no_leading_dot() -> None:
    assert kinds_and_texts("-1 .5") == [
        (TokenKind.PUNCT, "-"),
        (TokenKind.NUMBER, "1"),
        (TokenKind.PUNCT, "."),
        (TokenKind.NUMBER, "5"),
    ]


def test_a_timeframe_is_a_number_then_its_unit() -> None:
    assert kinds_and_texts("15m 1e") == [
        (TokenKind.NUMBER, "15"),
        (TokenKind.IDENT, "m"),
        (TokenKind.NUMBER, "1"),
        (TokenKind.IDENT, "e"),
    ]


def test_punctuation_takes_the_longest_match() -> None:
    texts = [
        text for _, text in kinds_and_texts("== != >= <= > < = + - * / % @ : $ { } [ ] ( ) , .")
    ]
    assert texts == "== != >= <= > < = + - * / % @ : $ { } [ ] ( ) , .".split()


def test_positions_are_one_based_and_a_tab_is_one_column() -> None:
    tokens = lex("STRATEGY x\n\tVERSION  2")
    assert [(tok.text, tok.line, tok.col) for tok in tokens] == [
        ("STRATEGY", 1, 1),
        ("x", 1, 10),
        ("VERSION", 2, 2),
        ("2", 2, 11),
        ("", 2, 12),  # EOF right after the last token
    ]


def test_comments_and_crlf_are_skipped_and_lines_still_count() -> None:
    tokens = lex("a -- b c\r\n/* d\n e */ f /**/g")
    assert [(tok.text, tok.line, tok.col) for tok in tokens[:-1]] == [
        ("a", 1, 1),
        ("f", 3, 7),
        ("g", 3, 13),
    ]


def test_strings_keep_their_source_text_and_unquote_their_escapes() -> None:
    tokens = lex(r"LOG 'it\'s \\ a\n\tb'")
    assert tokens[1].kind is TokenKind.STRING
    assert unquote(tokens[1].text) == "it's \\ a\n\tb"


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("a && b", 1, 3, "unexpected '&&': use AND"),
        ("a || b", 1, 3, "unexpected '||': use OR"),
        ("!a", 1, 1, "unexpected '!': use NOT, or != to compare"),
        ('LOG "x y"', 1, 5, "unexpected '\"': strings use single quotes"),
        ("a # b", 1, 3, "unexpected '#': comments start with --"),
        ("x\n é", 2, 2, "unexpected character 'é'"),
        ("x \x00", 1, 3, "unexpected character '\\x00'"),
        ("LOG 'abc\nWHEN", 1, 5, "unterminated string: a string ends with ' on the same line"),
        ("LOG 'a\\qb'", 1, 7, "bad escape '\\q' in string: use \\' \\\\ \\n or \\t"),
        ("x /* y\n\n", 1, 3, "unterminated block comment: /* has no closing */"),
        ("1e9999999", 1, 1, "number out of range: 1e9999999"),
    ],
)
def test_bad_input_is_one_positioned_error(text: str, line: int, col: int, message: str) -> None:
    _, errors = tokenize(text, "t.qkt")
    assert [(error.line, error.col, error.message) for error in errors] == [(line, col, message)]


def test_a_bad_character_becomes_an_error_token_so_the_parser_stays_quiet() -> None:
    tokens, _ = tokenize("a && b", "t.qkt")
    assert [tok.kind for tok in tokens] == [
        TokenKind.IDENT,
        TokenKind.ERROR,
        TokenKind.IDENT,
        TokenKind.EOF,
    ]
