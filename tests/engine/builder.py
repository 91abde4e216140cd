"""Build `Program`s by hand (the compiler is someone else's), and candles, for engine tests.

    p = ProgramBuilder()
    btc = p.stream("btc")
    fast, slow = p.ema(btc.close, 12), p.ema(btc.close, 26)
    p.rule(p.crosses(fast, "ABOVE", slow) & (p.position("btc") == 0), buy("btc", 1))
    program = p.build()

Expressions wrap program nodes in `E`, which overloads operators (`>`, `&`, `+`, ...) to build
`Compare`, `Logic`, `Arith` nodes, so conditions read like the `.qkt` they stand for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from qkt.dsl.nodes import Span
from qkt.dsl.program import (
    AccountField,
    AccountRef,
    Arith,
    Bracket,
    CandleRef,
    CloseAction,
    CloseAllAction,
    Compare,
    CompiledAction,
    CompiledAggregate,
    CompiledBetween,
    CompiledCase,
    CompiledCrosses,
    CompiledExpr,
    CompiledInList,
    CompiledOrderType,
    CompiledRule,
    CompiledSizing,
    Const,
    ExitLevel,
    FieldName,
    FieldRef,
    IndicatorCall,
    IndicatorName,
    LimitOrder,
    LogAction,
    Logic,
    MarketOrder,
    Neg,
    Not,
    Oco,
    OrderAction,
    PositionAvgPriceRef,
    PositionRef,
    Program,
    SizeQuantity,
    Snapshot,
    StopOrder,
    StreamDecl,
    TimeInForce,
    TrailingOrder,
)
from qkt.engine.config import EngineConfig
from qkt.engine.events import EngineEvent, LogEvent, TradeEvent
from qkt.engine.margin import MarginRules
from qkt.engine.orders import Fill
from qkt.engine.plan import walk
from qkt.engine.protocols import MemoryJournal
from qkt.engine.strategy import StrategyEngine
from qkt.market.models import Candle, CandleKey

Num = int | str | Decimal
T0 = 1_700_006_400_000  # 2023-11-15 00:00:00 UTC: a UTC midnight, so DAY tests read well


def D(x: Num) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def wrap(x: E | CompiledExpr | Num | bool) -> CompiledExpr:
    if isinstance(x, E):
        return x.node
    if isinstance(x, bool):
        return Const(x)
    if isinstance(x, int | str | Decimal):
        return Const(D(x))
    return x


@dataclass(frozen=True, eq=False)
class E:
    """An expression node with operators."""

    node: CompiledExpr

    def _cmp(self, op: Literal[">", "<", ">=", "<=", "==", "!="], other: object) -> E:
        return E(Compare(op, self.node, wrap(other)))  # type: ignore[arg-type]

    def __gt__(self, other: object) -> E:
        return self._cmp(">", other)

    def __lt__(self, other: object) -> E:
        return self._cmp("<", other)

    def __ge__(self, other: object) -> E:
        return self._cmp(">=", other)

    def __le__(self, other: object) -> E:
        return self._cmp("<=", other)

    def __eq__(self, other: object) -> E:  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other: object) -> E:  # type: ignore[override]
        return self._cmp("!=", other)

    def __and__(self, other: E | CompiledExpr | bool) -> E:
        return E(Logic("AND", self.node, wrap(other)))

    def __or__(self, other: E | CompiledExpr | bool) -> E:
        return E(Logic("OR", self.node, wrap(other)))

    def __invert__(self) -> E:
        return E(Not(self.node))

    def __neg__(self) -> E:
        return E(Neg(self.node))

    def __add__(self, other: E | Num) -> E:
        return E(Arith("+", self.node, wrap(other)))

    def __sub__(self, other: E | Num) -> E:
        return E(Arith("-", self.node, wrap(other)))

    def __mul__(self, other: E | Num) -> E:
        return E(Arith("*", self.node, wrap(other)))

    def __truediv__(self, other: E | Num) -> E:
        return E(Arith("/", self.node, wrap(other)))

    def between(self, low: E | Num, high: E | Num) -> E:
        return E(CompiledBetween(self.node, wrap(low), wrap(high)))

    def isin(self, *options: E | Num) -> E:
        return E(CompiledInList(self.node, tuple(wrap(o) for o in options)))


def const(x: Num | bool) -> E:
    return E(wrap(x))


class StreamRef:
    """`btc.close` and friends for one alias."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def field(self, name: FieldName) -> E:
        return E(FieldRef(self.alias, name))

    @property
    def open(self) -> E:
        return self.field("open")

    @property
    def high(self) -> E:
        return self.field("high")

    @property
    def low(self) -> E:
        return self.field("low")

    @property
    def close(self) -> E:
        return self.field("close")

    @property
    def candle(self) -> CandleRef:
        return CandleRef(self.alias)


class ProgramBuilder:
    """Declares streams, makes stateful nodes with fresh slots, collects rules."""

    def __init__(self, name: str = "test") -> None:
        self.name = name
        self._streams: list[StreamDecl] = []
        self._rules: list[CompiledRule] = []
        self._slot = 0

    def stream(self, alias: str, key: str = "SIM:BTCUSDT:1m") -> StreamRef:
        self._streams.append(StreamDecl(alias, CandleKey.parse(key), Span(1, 1)))
        return StreamRef(alias)

    def _take(self) -> int:
        self._slot += 1
        return self._slot - 1

    def indicator(self, name: IndicatorName, source: E | CandleRef, period: int) -> E:
        node = source if isinstance(source, CandleRef) else source.node
        root = _root(node)
        return E(IndicatorCall(self._take(), name, node, period, root))

    def sma(self, source: E, n: int) -> E:
        return self.indicator("SMA", source, n)

    def ema(self, source: E, n: int) -> E:
        return self.indicator("EMA", source, n)

    def rsi(self, source: E, n: int) -> E:
        return self.indicator("RSI", source, n)

    def atr(self, stream: StreamRef, n: int) -> E:
        return self.indicator("ATR", stream.candle, n)

    def crosses(self, left: E | Num, direction: Literal["ABOVE", "BELOW"], right: E | Num) -> E:
        return E(CompiledCrosses(self._take(), direction, wrap(left), wrap(right)))

    def agg(
        self,
        func: Literal["MAX", "MIN", "MEAN", "SUM"],
        operand: E,
        stream: str,
        window: int | None = None,
    ) -> E:
        return E(CompiledAggregate(self._take(), func, operand.node, window, stream))

    def snap(
        self,
        let: str,
        value: E,
        kind: Literal["BUY", "SELL", "OPEN", "T"],
        stream: str,
        lag: int = 0,
    ) -> E:
        return E(Snapshot(self._take(), let, value.node, kind, lag, stream))

    def case(self, branches: list[tuple[E, E | Num]], default: E | Num) -> E:
        return E(CompiledCase(tuple((c.node, wrap(v)) for c, v in branches), wrap(default)))

    @staticmethod
    def account(field: AccountField) -> E:
        return E(AccountRef(field))

    @staticmethod
    def position(stream: str) -> E:
        return E(PositionRef(stream))

    @staticmethod
    def avg_price(stream: str) -> E:
        return E(PositionAvgPriceRef(stream))

    def rule(
        self, condition: E | bool, action: CompiledAction, stream: str | None = None
    ) -> CompiledRule:
        if stream is None:
            stream = getattr(action, "stream", None) or self._streams[0].alias
        index = len(self._rules)
        rule = CompiledRule(
            index, stream, wrap(condition), action, Span(10 + index, 5), f"rule {index}"
        )
        self._rules.append(rule)
        return rule

    def watch(self, *exprs: E) -> None:
        """A rule that evaluates `exprs` on every close and never fires: their slots exist, and
        `engine.value_of` can read them."""
        condition = const(False)
        for expr in exprs:
            condition = condition & (expr == expr)
        self.rule(condition, LogAction("never"), stream=self._streams[0].alias)

    def build(self) -> Program:
        return Program(
            self.name, 1, f"{self.name}.qkt", tuple(self._streams), tuple(self._rules), self._slot
        )


def _root(node: CompiledExpr | CandleRef) -> str:
    """The stream under an indicator's source (the compiler's `root`)."""
    for inner in walk(node):
        if isinstance(inner, FieldRef | CandleRef):
            return inner.stream
        if isinstance(inner, IndicatorCall):
            return inner.root
    raise ValueError(f"no stream under {node!r}")


def level(kind: Literal["AT", "BY", "PCT", "RR"], value: E | Num) -> ExitLevel:
    return ExitLevel(kind, wrap(value))


def order(
    side: Literal["BUY", "SELL"],
    stream: str,
    qty: E | Num | None = None,
    *,
    sizing: CompiledSizing | None = None,
    order_type: CompiledOrderType | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    stop_loss: ExitLevel | None = None,
    take_profit: ExitLevel | None = None,
    oco: tuple[E | Num | None, E | Num | None] | None = None,
    trailing_exit: TrailingOrder | None = None,
) -> OrderAction:
    if sizing is None:
        sizing = SizeQuantity(wrap(1 if qty is None else qty))
    bracket = None
    if stop_loss is not None or take_profit is not None:
        bracket = Bracket(stop_loss, take_profit)
    oco_node = None
    if oco is not None:
        stop, limit = oco
        oco_node = Oco(None if stop is None else wrap(stop), None if limit is None else wrap(limit))
    return OrderAction(
        side,
        stream,
        sizing,
        order_type or MarketOrder(),
        tif,
        bracket,
        oco_node,
        trailing_exit,
    )


def buy(stream: str, qty: E | Num | None = None, **options: object) -> OrderAction:
    return order("BUY", stream, qty, **options)  # type: ignore[arg-type]


def sell(stream: str, qty: E | Num | None = None, **options: object) -> OrderAction:
    return order("SELL", stream, qty, **options)  # type: ignore[arg-type]


def limit_at(price: E | Num) -> LimitOrder:
    return LimitOrder(wrap(price))


def stop_at(stop: E | Num, limit: E | Num | None = None) -> StopOrder:
    return StopOrder(wrap(stop), None if limit is None else wrap(limit))


def trailing(amount: E | Num, percent: bool = False) -> TrailingOrder:
    return TrailingOrder(wrap(amount), percent)


def close(stream: str) -> CloseAction:
    return CloseAction(stream)


def close_all() -> CloseAllAction:
    return CloseAllAction()


def log(text: str) -> LogAction:
    return LogAction(text)


def candle(
    i: int,
    o: Num,
    h: Num | None = None,
    low: Num | None = None,
    c: Num | None = None,
    *,
    key: str = "SIM:BTCUSDT:1m",
    volume: Num = 1,
) -> Candle:
    """The i-th candle of `key` from T0; h, low, c default to a flat candle at `o`."""
    parsed = CandleKey.parse(key)
    close_ = D(o if c is None else c)
    high = D(h) if h is not None else max(D(o), close_)
    low_ = D(low) if low is not None else min(D(o), close_)
    return Candle(parsed, T0 + i * parsed.timeframe.ms, D(o), high, low_, close_, D(volume))


def closes(prices: list[Num], key: str = "SIM:BTCUSDT:1m", start: int = 0) -> list[Candle]:
    """Candles that open at the previous close and close at each price (high/low span both)."""
    out: list[Candle] = []
    previous = D(prices[0])
    for i, price in enumerate(prices):
        out.append(candle(start + i, previous, None, None, price, key=key))
        previous = D(price)
    return out


@dataclass
class Run:
    """An engine with a memory journal, and every event it reported."""

    engine: StrategyEngine
    journal: MemoryJournal
    events: list[EngineEvent]

    def feed(self, candles: list[Candle]) -> list[EngineEvent]:
        new: list[EngineEvent] = []
        for bar in candles:
            new += self.engine.on_candle(bar)
        self.events += new
        return new

    @property
    def fills(self) -> list[Fill]:
        return [e.fill for e in self.events if isinstance(e, TradeEvent)]

    @property
    def warnings(self) -> list[str]:
        return [e.message for e in self.events if isinstance(e, LogEvent)]


# The order-mechanics tests pin qkt 0.13's fills. None of them spends more than its balance, but
# several sell short on SIM (spot): they run with buying power on and shorts allowed, explicitly.
SHORTS_ALLOWED = MarginRules(allow_shorts=True)


def run(program: Program, candles: Sequence[Candle] = (), **config: object) -> Run:
    """Feed `candles` to a fresh engine (config fields as keywords, e.g. fee_bps=D(10));
    shorts are allowed unless `margin=` says otherwise."""
    config.setdefault("margin", SHORTS_ALLOWED)
    journal = MemoryJournal()
    engine = StrategyEngine(program, EngineConfig(**config), journal)  # type: ignore[arg-type]
    result = Run(engine, journal, [])
    result.feed(list(candles))
    return result
