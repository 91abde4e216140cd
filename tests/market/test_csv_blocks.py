"""read_candles splits whole blocks of lines at once when their shape allows it: every row must
come out exactly as a line-by-line reading gives it, whatever the block holds."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from qkt.errors import UserError
from qkt.market import csvdata

T0 = 1_767_225_600_000
MINUTE = 60_000


def _line_by_line(text: str) -> list[csvdata.CandleRow]:
    """The reference: each non-blank line split on its own (csv module), in file order."""
    rows = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if not line.strip():
            continue
        fields = next(csv.reader([line]))
        ts, o, h, lo, c, v = (field.strip() for field in fields[:6])
        rows.append((int(ts), *(Decimal(x) for x in (o, h, lo, c, v)), number))
    return rows


def _row(i: int, extra: str = "") -> str:
    p = 100 + i
    return f"{T0 + i * MINUTE},{p},{p + 2},{p - 1},{p + 1},1.5{extra}"


@pytest.mark.parametrize("block_bytes", [64, 300, 1 << 20])
def test_odd_rows_in_any_block_read_as_line_by_line(
    tmp_path: Path, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvdata, "BLOCK_BYTES", block_bytes)
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [_row(i) for i in range(0, 20)]
    lines += [""]  # a blank line
    lines += [_row(i) for i in range(20, 30)]
    # A long row: five more fields, as many as the blank line lacks (a block's total is right).
    lines += [_row(30, extra=",a,b,c,d,e")]
    lines += [_row(31)]
    lines += [_row(i) for i in range(32, 60)]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "odd.csv"
    path.write_text(text)
    assert list(csvdata.read_candles(path)) == _line_by_line(text)


def test_a_quoted_row_reads_as_line_by_line(tmp_path: Path) -> None:
    lines = ["timestamp,open,high,low,close,volume"] + [_row(i) for i in range(10)]
    lines[5] = f'"{T0 + 4 * MINUTE}","104","106","103","105","1.5"'
    text = "\n".join(lines)  # and the last line without a newline
    path = tmp_path / "quoted.csv"
    path.write_text(text)
    assert list(csvdata.read_candles(path)) == _line_by_line(text)


def test_windows_line_ends_read_the_same(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close,volume\r\n" + "".join(_row(i) + "\r\n" for i in range(50))
    path = tmp_path / "crlf.csv"
    path.write_bytes(text.encode())
    assert list(csvdata.read_candles(path)) == _line_by_line(text)


def test_a_bad_row_deep_in_a_block_names_its_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvdata, "BLOCK_BYTES", 200)
    rows = [_row(i) for i in range(40)]
    rows[25] = rows[25].replace(",125,", ",12x5,", 1)  # the open of line 27
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError) as raised:
        list(csvdata.read_candles(path))
    column = len(str(T0 + 25 * MINUTE)) + 2
    assert str(raised.value).startswith(f"{path}:27:{column}: open: '12x5' is not a number")
