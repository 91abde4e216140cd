"""How the worker words things for people: fill lines."""

from __future__ import annotations

from qkt.engine import Fill
from qkt.log import iso_utc
from qkt.money import to_str


def fill_line(fill: Fill, *, with_time: bool = True) -> str:
    """`<ISO time> FILL BUY 0.01 BTCUSDT @ 65000.12 fee 0.65 realized 0` (the fill's own time)."""
    text = (
        f"FILL {fill.side.value} {to_str(fill.qty)} {fill.instrument.symbol} @ "
        f"{to_str(fill.price)} fee {to_str(fill.fee)} realized {to_str(fill.realized)}"
    )
    return f"{iso_utc(fill.ts)} {text}" if with_time else text
