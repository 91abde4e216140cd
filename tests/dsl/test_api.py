"""The public entry points: compile_source / compile_bytes / compile_file / summarize, and how
a CompileError renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from qkt.dsl import CompileError, compile_bytes, compile_file, compile_source, summarize
from qkt.errors import NotFoundError, UserError

VALID = (
    "STRATEGY s VERSION 1\n"
    "SYMBOLS btc = SIM:BTCUSDT EVERY 1m\n"
    "RULES WHEN btc.close > 1 THEN CLOSE btc\n"
)


def test_compile_source_names_the_file_in_the_program_and_errors() -> None:
    assert compile_source(VALID, "a/b.qkt").path == "a/b.qkt"
    with pytest.raises(CompileError) as caught:
        compile_source("STRATEGY", "a/b.qkt")
    assert (
        str(caught.value.errors[0])
        == "a/b.qkt:1:9: expected a strategy name after STRATEGY, got end of file"
    )


def test_errors_come_in_source_order_whatever_stage_found_them() -> None:
    text = (
        "STRATEGY s VERSION 1\n"
        "SYMBOLS btc = SIM:BTCUSDT EVERY 1m\n"
        "RULES\n"
        "WHEN nope.close > 1 THEN CLOSE btc\n"  # semantic (checker)
        "WHEN btc.close > 1 THEN ZAP\n"  # syntax (parser)
        "WHEN btc.close & 1 THEN CLOSE btc\n"  # lexical (lexer)
    )
    with pytest.raises(CompileError) as caught:
        compile_source(text)
    assert [(e.line, e.col) for e in caught.value.errors] == [(4, 6), (5, 25), (6, 16)]


def test_render_shows_every_error_with_its_line_and_caret_then_the_count() -> None:
    text = VALID.replace("\n", "\r\n").replace(
        "RULES WHEN", "RULES\r\n\tWHEN x > 1 THEN ZAP btc\r\nWHEN"
    )
    with pytest.raises(CompileError) as caught:
        compile_source(text, "f.qkt")
    assert caught.value.render() == (
        "f.qkt:4:18: expected action keyword, got 'ZAP'\n"
        "\tWHEN x > 1 THEN ZAP btc\n"
        "\t                ^\n"
        "1 error"
    )


def test_compile_error_carries_the_http_and_cli_details() -> None:
    with pytest.raises(CompileError) as caught:
        compile_source("STRATEGY s VERSION x", "f.qkt")
    body = caught.value.to_json()["error"]
    assert body["code"] == "dsl_error"
    assert (body["file"], body["line"], body["col"]) == ("f.qkt", 1, 20)
    assert body["message"] == "f.qkt:1:20: expected a whole number after VERSION, got 'x'"
    assert caught.value.http_status == 422


def test_undecodable_bytes_are_a_positioned_error_at_the_first_bad_byte() -> None:
    data = VALID.encode() + "-- café ".encode() + b"\xff\xfe rest\n"
    with pytest.raises(CompileError) as caught:
        compile_bytes(data, "f.qkt")
    [error] = caught.value.errors
    assert (error.line, error.col) == (4, 9)  # "-- café " is 8 characters, 9 bytes
    assert error.message == "not valid UTF-8 (byte 0xff): save the file as UTF-8"
    assert "-- café" in caught.value.render()


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    assert compile_bytes(b"\xef\xbb\xbf" + VALID.encode(), "f.qkt").name == "s"


def test_compile_file_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.qkt"
    good.write_text(VALID)
    assert compile_file(good).path == str(good)
    bad = tmp_path / "bad.qkt"
    bad.write_text("STRATEGY")
    with pytest.raises(CompileError) as caught:
        compile_file(str(bad))
    assert caught.value.errors[0].path == str(bad)


def test_a_missing_file_or_a_folder_is_a_clear_user_error_not_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"^no such file: .*missing\.qkt$"):
        compile_file(tmp_path / "missing.qkt")
    with pytest.raises(UserError, match="is a directory, not a .qkt file"):
        compile_file(tmp_path)


def test_summarize_is_stable_and_says_what_each_rule_does() -> None:
    program = compile_source(
        "STRATEGY demo VERSION 4\n"
        "SYMBOLS a = SIM:X EVERY 1h, b = SIM:X EVERY 1h\n"
        "RULES WHEN NOT (a.price > 1 OR -a.low < -(-2)) THEN LOG 'hi'\n"
    )
    assert summarize(program) == {
        "name": "demo",
        "version": 4,
        "streams": [
            {"alias": "a", "key": "SIM:X:1h", "line": 2},
            {"alias": "b", "key": "SIM:X:1h", "line": 2},
        ],
        "keys": ["SIM:X:1h"],
        "rules": [
            {
                "index": 0,
                "line": 3,
                "stream": "a",
                "text": "WHEN NOT (a.price > 1 OR -a.low < -(-2)) THEN LOG 'hi'",
                "when": "NOT (a.close > 1 OR -a.low < -(-2))",
                "action": {"kind": "LOG", "text": "hi"},
            }
        ],
        "slot_count": 0,
        "history": {"SIM:X:1h": 1},
    }
