"""Golden files (tomli style): each valid .qkt pins its summary, each invalid one its errors.

`tests/dsl/data/valid/X.qkt` compiles and `summarize()` equals `X.json`;
`tests/dsl/data/invalid/X.qkt` fails with exactly the `line:col: message` lines of `X.err`.
After a deliberate change, `QKT_REGEN_GOLDEN=1 pytest tests/dsl/test_golden.py` rewrites the
expected files; review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qkt.dsl import CompileError, compile_file, summarize

DATA = Path(__file__).parent / "data"
VALID = sorted((DATA / "valid").glob("*.qkt"))
INVALID = sorted((DATA / "invalid").glob("*.qkt"))
REGEN = os.environ.get("QKT_REGEN_GOLDEN") == "1"


def error_lines(error: CompileError) -> str:
    return "".join(f"{each.line}:{each.col}: {each.message}\n" for each in error.errors)


@pytest.mark.parametrize("source", VALID, ids=lambda path: path.stem)
def test_valid_file_compiles_to_its_pinned_summary(source: Path) -> None:
    summary = summarize(compile_file(source))
    expected = source.with_suffix(".json")
    if REGEN:
        expected.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    assert summary == json.loads(expected.read_text())
    # The summary is what `--json`-style callers get: it must survive a JSON round trip.
    assert json.loads(json.dumps(summary)) == summary


@pytest.mark.parametrize("source", INVALID, ids=lambda path: path.stem)
def test_invalid_file_reports_exactly_its_pinned_errors(source: Path) -> None:
    with pytest.raises(CompileError) as caught:
        compile_file(source)
    expected = source.with_suffix(".err")
    if REGEN:
        expected.write_text(error_lines(caught.value))
    assert error_lines(caught.value) == expected.read_text()
    # Every error names the file it came from.
    assert all(each.path == str(source) for each in caught.value.errors)


def test_every_golden_file_has_its_expectation_and_nothing_is_left_over() -> None:
    assert len(VALID) >= 8 and len(INVALID) >= 26
    for folder, suffix in (("valid", ".json"), ("invalid", ".err")):
        stems = {path.stem for path in (DATA / folder).glob("*.qkt")}
        expectations = {path.stem for path in (DATA / folder).glob(f"*{suffix}")}
        assert stems == expectations, folder
