"""`iso_utc`, the one time format: exact at every millisecond, whatever second came before."""

from __future__ import annotations

from datetime import UTC, datetime

from qkt.timefmt import iso_utc


def _reference(epoch_ms: int, millis: bool = True) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{epoch_ms % 1000:03d}Z" if millis else f"{text}Z"


def test_each_time_is_written_exactly_whichever_second_was_written_before() -> None:
    # Back and forth across second, minute, day and year boundaries and before 1970: the
    # second's text is kept from one call to the next, so a stale one would show here.
    times = [
        1_767_225_599_999, 1_767_225_600_000, 1_767_225_599_000, 1_767_225_600_999,
        1_767_225_601_000, 1_767_225_600_001, 0, -1, -500, -1_000, -1_001, 86_399_999,
        86_400_000, 1_767_225_600_000,
    ]  # fmt: skip
    for epoch_ms in times:
        assert iso_utc(epoch_ms) == _reference(epoch_ms), epoch_ms
        assert iso_utc(epoch_ms, millis=False) == _reference(epoch_ms, millis=False), epoch_ms


def test_the_format_is_the_documented_one() -> None:
    assert iso_utc(1_778_252_534_234) == "2026-05-08T15:02:14.234Z"
    assert iso_utc(1_778_252_534_234, millis=False) == "2026-05-08T15:02:14Z"
