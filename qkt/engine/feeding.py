"""Feeding indicator call sites: the float instance behind each slot, and what it is fed on a
close of its root stream (a field, a whole candle, an inner indicator's value, or a pair)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from qkt.dsl.program import CandleRef, CompiledExpr, FieldRef, IndicatorCall
from qkt.engine.indicators import Bar, Indicator, make_indicator
from qkt.engine.values import UNDEFINED, Undefined, Value, from_float
from qkt.market.models import Candle

if TYPE_CHECKING:
    from qkt.engine.slots import SlotTable


class IndicatorSlot:
    """One indicator call site: the float instance and its latest value as a Decimal."""

    def __init__(self, node: IndicatorCall) -> None:
        self.node = node
        self.indicator: Indicator = make_indicator(node.name, node.args())
        self.value: Decimal | Undefined = UNDEFINED

    @property
    def number(self) -> float | None:
        """The float behind `value` (what an outer indicator is fed)."""
        return self.indicator.output(self.node.output)

    def feed(self, x: float) -> None:
        """Feed one value (series indicators)."""
        self.indicator.update(x)
        self.value = from_float(self.number)

    def feed_pair(self, x: float, y: float) -> None:
        """Feed one pair of values (CORREL, BETA)."""
        self.indicator.update_pair(x, y)
        self.value = from_float(self.number)

    def feed_candle(self, candle: Candle | Bar) -> None:
        """Feed one candle (candle indicators)."""
        self.indicator.update_candle(candle if isinstance(candle, Bar) else bar_of(candle))
        self.value = from_float(self.number)

    def feed_bar(self, high: float, low: float, close: float) -> None:
        """Feed one candle's high, low and close (ATR as hand-built programs use it)."""
        self.indicator.update_candle(Bar(close, high, low, close, 0.0))
        self.value = from_float(self.number)

    @property
    def warm(self) -> bool:
        """The indicator has a value."""
        return self.number is not None


def bar_of(candle: Candle) -> Bar:
    """The floats candle indicators read."""
    return Bar(
        float(candle.open),
        float(candle.high),
        float(candle.low),
        float(candle.close),
        float(candle.volume),
        candle.open_ms,
    )


def feed_indicator(
    slot: IndicatorSlot,
    slots: SlotTable,
    candles: dict[str, Candle],
    evaluate: Callable[[CompiledExpr], Value],
) -> None:
    """Feed `slot` on a close of its root stream, from what its source reads now."""
    node = slot.node
    source = node.source
    if isinstance(source, CandleRef):
        slot.feed_candle(slots.bar(candles[source.stream]))
        return
    if isinstance(source, FieldRef):  # the common case, without the evaluator
        x: float | None = float(getattr(candles[source.stream], source.field))
    elif isinstance(source, IndicatorCall):
        x = slots.indicators[source.slot].number  # fed each defined value of the inner one
    else:
        value = evaluate(source)
        x = float(value) if isinstance(value, Decimal) else None
    if x is None:
        return
    if node.other is None:
        slot.feed(x)
        return
    other = evaluate(node.other)
    if isinstance(other, Decimal):
        slot.feed_pair(x, float(other))
