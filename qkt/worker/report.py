"""How the worker words things for people: fill lines and timestamps."""

from __future__ import annotations

import time

from qkt.engine import Fill
from qkt.money import to_str


def iso_ms(seconds: float) -> str:
    """`2026-05-08T15:02:14.234Z` for a wall-clock time in seconds since the epoch."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{int(seconds * 1000) % 1000:03d}Z"


def fill_line(fill: Fill, *, with_time: bool = True) -> str:
    """`<ISO time> FILL BUY 0.01 BTCUSDT @ 65000.12 fee 0.65 realized 0` (the fill's own time)."""
    text = (
        f"FILL {fill.side.value} {to_str(fill.qty)} {fill.instrument.symbol} @ "
        f"{to_str(fill.price)} fee {to_str(fill.fee)} realized {to_str(fill.realized)}"
    )
    return f"{iso_ms(fill.ts / 1000)} {text}" if with_time else text
