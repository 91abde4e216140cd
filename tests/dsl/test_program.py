"""Program helpers that later parts rely on."""

from __future__ import annotations

from qkt.dsl.nodes import Span
from qkt.dsl.program import Program, StreamDecl
from qkt.market.models import CandleKey


def _program() -> Program:
    streams = tuple(
        StreamDecl(alias, CandleKey.parse(key), Span(1, 1))
        for alias, key in [
            ("btc", "BYBIT:BTCUSDT:1m"),
            ("btc2", "BYBIT:BTCUSDT:1m"),
            ("eth", "ALPACA:ETHUSD:1h"),
        ]
    )
    return Program("s", 1, "s.qkt", streams, (), 0)


def test_keys_are_distinct_in_declaration_order() -> None:
    assert [str(k) for k in _program().keys] == ["BYBIT:BTCUSDT:1m", "ALPACA:ETHUSD:1h"]


def test_with_broker_moves_every_stream_and_keeps_aliases() -> None:
    moved = _program().with_broker("SIM")
    assert [str(k) for k in moved.keys] == ["SIM:BTCUSDT:1m", "SIM:ETHUSD:1h"]
    assert [d.alias for d in moved.streams] == ["btc", "btc2", "eth"]
    assert moved.stream("eth").key.timeframe.text == "1h"
