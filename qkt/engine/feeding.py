"""Feeding indicator slots: the float instance behind each slot, and what it is fed on a close of
its root stream (a field, a whole candle, an inner indicator's value, or a pair).

An indicator computes in floats; its value as a language number (a 16-digit Decimal,
`values.from_float`) is made only when something reads it, once per update: most closes feed an
indicator whose Decimal nobody asks for (a CROSSES of two indicators compares the floats when
that gives the same answer, evaluator.py), and the conversion is the dearest part of a feed.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from qkt.dsl.program import CandleRef, CompiledExpr, FieldRef, IndicatorCall
from qkt.engine.indicators import Bar, Indicator, make_indicator
from qkt.engine.values import UNDEFINED, Undefined, Value, from_float
from qkt.market.models import Candle

if TYPE_CHECKING:
    from qkt.engine.slots import SlotTable

Feeder = Callable[[], None]


class IndicatorSlot:
    """One indicator slot: the float instance, its latest output as a float (`number`), and
    that output as a language value (`value`, converted on first read after each update)."""

    __slots__ = ("_value", "indicator", "node", "number")

    def __init__(self, node: IndicatorCall) -> None:
        self.node = node
        self.indicator: Indicator = make_indicator(node.name, node.args())
        self.number: float | None = None  # the float behind `value` (what an outer one is fed)
        self._value: Decimal | Undefined | None = UNDEFINED  # None: not converted yet

    @property
    def value(self) -> Decimal | Undefined:
        """The latest output as a 16-digit Decimal; undefined until warm (or not finite)."""
        value = self._value
        if value is None:
            value = self._value = from_float(self.number)
        return value

    def refresh(self) -> None:
        """Read the output again after the instance moved (an update, a restore)."""
        self.number = self.indicator.output(self.node.output)
        self._value = None

    def feed(self, x: float) -> None:
        """Feed one value (series indicators)."""
        self.indicator.update(x)
        self.refresh()

    def feed_pair(self, x: float, y: float) -> None:
        """Feed one pair of values (CORREL, BETA)."""
        self.indicator.update_pair(x, y)
        self.refresh()

    def feed_candle(self, candle: Candle | Bar) -> None:
        """Feed one candle (candle indicators)."""
        self.indicator.update_candle(candle if isinstance(candle, Bar) else bar_of(candle))
        self.refresh()

    def feed_bar(self, high: float, low: float, close: float) -> None:
        """Feed one candle's high, low and close (ATR as hand-built programs use it)."""
        self.indicator.update_candle(Bar(close, high, low, close, 0.0))
        self.refresh()

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


def feeders(
    numbers: Sequence[int],
    slots: SlotTable,
    candles: dict[str, Candle],
    evaluator_for: Callable[[int], Callable[[CompiledExpr], Value]],
) -> tuple[Feeder, ...]:
    """What feeds the indicator slots `numbers` (in update order, an inner one before the one
    it feeds) on a close, as `feed_indicator` would, specialised once: the single-output series
    indicators fed one candle field (the usual `EMA(btc.close, 12)`) are fed together, the field
    converted to a float once, without per-call tests; every other slot runs `feed_indicator`.
    A field-fed slot depends on no other, so feeding it with the first of its field is safe."""
    built: list[Feeder] = []
    groups: dict[tuple[str, str], list[IndicatorSlot]] = {}
    for number in numbers:
        slot = slots.indicators[number]
        source = slot.node.source
        if not _plain_field(slot) or not isinstance(source, FieldRef):
            evaluate = evaluator_for(number)
            built.append(functools.partial(feed_indicator, slot, slots, candles, evaluate))
        elif (source.stream, source.field) in groups:
            groups[source.stream, source.field].append(slot)
        else:
            members = groups[source.stream, source.field] = [slot]
            built.append(_field_feeder(candles, source, members))
    return tuple(built)


def _plain_field(slot: IndicatorSlot) -> bool:
    node = slot.node
    return (
        isinstance(node.source, FieldRef)
        and node.other is None
        and node.output in (None, "value")
        and slot.indicator.kind == "series"
    )


def _field_feeder(
    candles: dict[str, Candle], source: FieldRef, members: list[IndicatorSlot]
) -> Feeder:
    stream, read = source.stream, operator.attrgetter(source.field)

    def feed_field() -> None:
        x = float(read(candles[stream]))
        for slot in members:
            indicator = slot.indicator
            indicator.update(x)
            slot.number = indicator.value
            slot._value = None

    return feed_field
