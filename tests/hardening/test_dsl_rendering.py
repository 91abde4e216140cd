"""Defect 4 (DSL side), the escape-sequence item, and defect 8's `/etc/shadow` item.

Before: rendering 40k errors split the source once per error (37.7 s with the daemon's loop
blocked), any file size was read, a source line's escape sequences reached the terminal, and
deploying /etc/shadow returned its lines in the 422's `rendered`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qkt.dsl import MAX_SOURCE_BYTES, CompileError, compile_file, compile_source
from qkt.dsl import errors as dsl_errors
from qkt.errors import UserError
from tests.supervisor.daemons import running_daemon

HEADER = "STRATEGY s VERSION 1\nSYMBOLS btc = SIM:BTCUSDT EVERY 1s\nRULES\n"
BAD_RULE = "    WHEN ) THEN BUY btc SIZING 1\n"


def compile_error(source: str, path: str = "s.qkt") -> CompileError:
    with pytest.raises(CompileError) as caught:
        compile_source(source, path)
    return caught.value


def test_many_errors_render_from_one_split_and_are_capped() -> None:
    error = compile_error(HEADER + BAD_RULE * 5000)
    assert len(error.errors) == 5000
    dsl_errors._source_lines.cache_clear()

    rendered = error.render()

    assert dsl_errors._source_lines.cache_info().misses == 1  # one split for 5000 errors
    lines = rendered.split("\n")
    assert lines[-2:] == [f"and {5000 - dsl_errors.MAX_RENDERED} more errors", "5000 errors"]
    assert rendered.count("expected an expression") == dsl_errors.MAX_RENDERED
    body = error.to_json()["error"]
    assert body["error_count"] == 5000 and len(body["errors"]) == dsl_errors.MAX_LISTED


def test_a_file_too_large_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.qkt"
    path.write_text(HEADER + "-- " + "x" * MAX_SOURCE_BYTES + "\n")
    with pytest.raises(UserError, match=r"larger than 1024 KiB"):
        compile_file(path)


def test_escape_sequences_in_a_source_line_are_shown_escaped() -> None:
    source = HEADER + "    WHEN \x1b[2J\x1b]0;owned\x07 ) THEN BUY btc SIZING 1 \u202e\n"
    error = compile_error(source)
    rendered = error.render()
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in rendered and raw not in str(error) and raw not in error.message
    assert "\\x1b[2J\\x1b]0;owned\\x07" in rendered and "\\u202e" in rendered
    # The caret still points under the same (escaped) character.
    source_line, caret = rendered.split("\n")[1:3]
    col = error.errors[0].col
    shown_prefix = dsl_errors.printable(source.split("\n")[3][: col - 1])
    assert caret == " " * len(shown_prefix) + "^"
    assert source_line.startswith(shown_prefix)


def test_a_file_that_is_not_a_qkt_source_is_never_quoted(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text("root:$6$saltSECRET:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    with pytest.raises(CompileError) as caught:
        compile_file(shadow)
    body = caught.value.to_json()["error"]
    text = repr(body)
    assert "SECRET" not in text and "19000" not in text  # (the tmp path holds "root")
    assert body["line"] == 1 and "not a .qkt file" in body["message"]


def test_the_daemon_returns_no_line_of_a_non_qkt_file(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text("root:$6$saltSECRET:19000:0:99999:7:::\n")
    huge = tmp_path / "huge.qkt"
    huge.write_bytes(b"-- " + b"x" * (MAX_SOURCE_BYTES + 10) + b"\n")
    with running_daemon(tmp_path / "s") as daemon:
        response = daemon.post("/deploy", json={"file": str(shadow), "name": "shadow"})
        assert response.status_code == 422
        assert "SECRET" not in response.text and "19000" not in response.text

        response = daemon.post("/deploy", json={"file": str(huge), "name": "huge"})
        assert 400 <= response.status_code < 500
        assert "larger than 1024 KiB" in response.json()["error"]["message"]
        assert daemon.get("/health").status_code == 200
