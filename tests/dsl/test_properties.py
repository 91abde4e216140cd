"""Any input at all: the compiler returns a Program or raises CompileError, never anything else,
and never takes more than a second (hypothesis' deadline, not a timing assert)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qkt.dsl import CompileError, Program, compile_bytes, compile_source, summarize
from qkt.dsl.lexer import tokenize
from qkt.dsl.tokens import KEYWORDS, PUNCTUATION

VALID_FILES = sorted((Path(__file__).parent / "data" / "valid").glob("*.qkt"))
WORDS = [
    *sorted(KEYWORDS),
    *"btc eth s x fast slow T t EMA ema SMA RSI ATR MACD SIM BYBIT BTCUSDT m h d candle".split(),
]
LITERALS = ["0", "1", "12", "0.5", "1e-3", "2.5E+10", "15m", "0m", "1M", "99999999999", "'hi'"]
JUNK = ["'", '"', "&&", "!", "#", "/*", "*/", "--", "\\", "é", "\t", "\n"]
TOKENS = st.sampled_from(WORDS + LITERALS + list(PUNCTUATION) + JUNK)
SEPARATORS = st.sampled_from([" ", " ", "\n", ""])
HEADER = "STRATEGY s VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1m, eth = SIM:ETHUSDT EVERY 1h\n"

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=1),
    suppress_health_check=[HealthCheck.too_slow],
)


def assert_compiles_or_fails_cleanly(text: str, *, data: bytes | None = None) -> None:
    try:
        program = compile_source(text) if data is None else compile_bytes(data, "fuzz.qkt")
    except CompileError as error:
        lines = text.count("\n") + 1
        assert error.errors
        for each in error.errors:
            assert 1 <= each.line <= lines and each.col >= 1, each
        assert error.render().endswith("error" if len(error.errors) == 1 else "errors")
        return
    assert isinstance(program, Program)
    json.dumps(summarize(program))


@st.composite
def soups(draw: st.DrawFn) -> str:
    """Real words, numbers and punctuation in random order, sometimes after a valid header."""
    tokens = draw(st.lists(TOKENS, max_size=80))
    seps = draw(st.lists(SEPARATORS, min_size=len(tokens), max_size=len(tokens)))
    body = "".join(token + sep for token, sep in zip(tokens, seps, strict=True))
    return (HEADER + "RULES " + body) if draw(st.booleans()) else body


@st.composite
def mutants(draw: st.DrawFn) -> str:
    """A valid golden file with a few tokens deleted, repeated or replaced."""
    source = draw(st.sampled_from(VALID_FILES)).read_text()
    tokens, _ = tokenize(source, "x")
    texts = [tok.text for tok in tokens[:-1]]
    for _ in range(draw(st.integers(1, 4))):
        if not texts:
            break
        at = draw(st.integers(0, len(texts) - 1))
        how = draw(st.sampled_from(["delete", "repeat", "replace"]))
        if how == "delete":
            del texts[at]
        elif how == "repeat":
            texts.insert(at, texts[at])
        else:
            texts[at] = draw(TOKENS)
    return " ".join(texts)


@FUZZ
@given(soups())
def test_token_soup_never_escapes_as_anything_but_a_compile_error(text: str) -> None:
    assert_compiles_or_fails_cleanly(text)


@FUZZ
@given(mutants())
def test_a_mutated_valid_file_never_escapes_as_anything_but_a_compile_error(text: str) -> None:
    assert_compiles_or_fails_cleanly(text)


@settings(FUZZ, max_examples=200)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_anything_but_a_compile_error(data: bytes) -> None:
    assert_compiles_or_fails_cleanly(data.decode("utf-8", errors="replace"), data=data)


@settings(FUZZ, max_examples=100)
@given(st.text(max_size=200))
def test_random_text_never_escapes_as_anything_but_a_compile_error(text: str) -> None:
    assert_compiles_or_fails_cleanly(text)
