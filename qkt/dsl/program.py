"""The compiled form of a `.qkt` file: what the engine runs. Plain frozen values, no I/O.

The compiler resolves everything the engine should not have to think about:
- aliases become `StreamDecl`s with a `CandleKey`; `price` becomes `close`;
- LETs are expanded in place (they are macros), `SYMBOL` in DEFAULTS becomes the action's stream;
- FOR EACH is expanded in place, in list order, one `CompiledRule` per alias;
- DEFAULTS are merged into every action (an action's own options win);
- every distinct indicator call (the same call written twice, or a LET used twice, is one) and
  every other stateful site (CROSSES, aggregate, snapshot) gets its own `slot`, a small int
  unique in the program, so the engine keeps one state object per slot.

Semantics (dsl.md, "Meaning") that the engine implements on these nodes:
- `Logic`, `Compare`, `Arith`, ... are strict: undefined spreads, nothing short-circuits
  (`FALSE AND undefined` is undefined), so every CROSSES/aggregate in a condition sees every
  evaluation. Only `CompiledCase` is lazy.
- A rule is evaluated when a candle of `CompiledRule.stream` closes; it fires only if its
  condition is exactly TRUE.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from typing import Literal, TypeAlias

from qkt.dsl.catalog import INDICATORS, Args
from qkt.dsl.nodes import Span
from qkt.market.models import CandleKey

FieldName: TypeAlias = Literal["open", "high", "low", "close", "volume"]
IndicatorName: TypeAlias = str  # a key of qkt.dsl.catalog.INDICATORS
AccountField: TypeAlias = Literal[
    "equity", "balance", "realized_pnl", "unrealized_pnl", "total_pnl"
]


# ---------------------------------------------------------------------------------------------
# Expressions. Values are Decimal, bool or undefined (the engine's choice of sentinel).


@dataclass(frozen=True, slots=True)
class Const:
    value: Decimal | bool


@dataclass(frozen=True, slots=True)
class FieldRef:
    """`btc.close`: the field of the stream's latest closed candle (undefined before one)."""

    stream: str
    field: FieldName


@dataclass(frozen=True, slots=True)
class CandleRef:
    """`btc.candle`: the whole candle; only ever the source of an ATR."""

    stream: str


@dataclass(frozen=True, slots=True)
class IndicatorCall:
    """`EMA(x, 12)`, `MACD(x, 12, 26, 9).signal`: one incremental instance per slot, fed on each
    close of `root`.

    `source` is a FieldRef, another IndicatorCall (`EMA(RSI(btc.close, 14), 5)`) or, for candle
    indicators, a CandleRef; `other` is the second series of CORREL and BETA (its latest value
    is read when `root` closes). `root` is the stream whose closes update it. `params` are every
    parameter in TA-Lib's order, defaults filled in (empty when `period` is the only one);
    `output` the field of a multi-output indicator.
    """

    slot: int
    name: IndicatorName
    source: CompiledExpr | CandleRef
    period: int
    root: str
    params: tuple[float, ...] = ()
    output: str | None = None
    matype: str | None = None
    anchor: str = "1d"
    other: CompiledExpr | None = None

    def args(self) -> Args:
        """The resolved arguments the engine builds the instance from."""
        spec = INDICATORS[self.name]
        params = self.params
        if not params:
            defaults = tuple(param.default for param in spec.params)
            params = (float(self.period), *defaults[1:])
        return Args(params, self.matype or spec.matype or "SMA", self.anchor)


@dataclass(frozen=True, slots=True)
class MathCall:
    """`ABS(x)`, `MIN(a, b, ...)`, `SQRT(x)`, ...: no state; undefined if an argument is, or
    outside the function's domain (logged once)."""

    func: str
    args: tuple[CompiledExpr, ...]


@dataclass(frozen=True, slots=True)
class Neg:
    operand: CompiledExpr


@dataclass(frozen=True, slots=True)
class Not:
    operand: CompiledExpr


@dataclass(frozen=True, slots=True)
class Arith:
    """Decimal arithmetic (16 significant digits, half-even); x / 0 is undefined."""

    op: Literal["+", "-", "*", "/"]
    left: CompiledExpr
    right: CompiledExpr


@dataclass(frozen=True, slots=True)
class Compare:
    op: Literal[">", "<", ">=", "<=", "==", "!="]
    left: CompiledExpr
    right: CompiledExpr


@dataclass(frozen=True, slots=True)
class Logic:
    """AND / OR, strict in both operands (no short-circuit), undefined if either is."""

    op: Literal["AND", "OR"]
    left: CompiledExpr
    right: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledBetween:
    """`value BETWEEN low AND high`, inclusive."""

    value: CompiledExpr
    low: CompiledExpr
    high: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledInList:
    """`value IN [a, b, ...]`: numeric equality with any member."""

    value: CompiledExpr
    options: tuple[CompiledExpr, ...]


@dataclass(frozen=True, slots=True)
class CompiledCrosses:
    """`left CROSSES ABOVE|BELOW right`; state (was left > right last time) lives in `slot`."""

    slot: int
    direction: Literal["ABOVE", "BELOW"]
    left: CompiledExpr
    right: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledCase:
    """`CASE WHEN c THEN v ... ELSE d END`: the first exactly-true branch, else `default`."""

    branches: tuple[tuple[CompiledExpr, CompiledExpr], ...]
    default: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledAggregate:
    """`MAX|MIN|MEAN|SUM(operand) SINCE T-N` (window=N) or `SINCE OPEN` (window=None).

    Updated on each close of `stream` (the rule's stream). T-N covers the last N values including
    the current one (undefined until N exist). SINCE OPEN covers the closes since the position in
    `stream`'s symbol opened; reset on open, close and flip; undefined while flat.
    """

    slot: int
    func: Literal["MAX", "MIN", "MEAN", "SUM"]
    operand: CompiledExpr
    window: int | None
    stream: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """`name@BUY|SELL|OPEN|T-N`: a LET's value captured at a moment, per slot.

    `value` is the LET's expanded expression, `stream` the rule's stream.
    - BUY / SELL: captured when a BUY / SELL rule whose action names `stream` fires.
    - OPEN: captured when the position in `stream`'s symbol opens; cleared when flat.
    - T: its value `lag` closes of `stream` ago (pushed on each close, before rules run).
    """

    slot: int
    let: str
    value: CompiledExpr
    kind: Literal["BUY", "SELL", "OPEN", "T"]
    lag: int
    stream: str


@dataclass(frozen=True, slots=True)
class AccountRef:
    """`ACCOUNT.equity` and friends, for the whole strategy."""

    field: AccountField


@dataclass(frozen=True, slots=True)
class PositionRef:
    """`POSITION.a`: signed quantity held in a's (broker, symbol); 0 when flat."""

    stream: str


@dataclass(frozen=True, slots=True)
class PositionAvgPriceRef:
    """`POSITION_AVG_PRICE.a`: average entry price of a's position; 0 when flat."""

    stream: str


CompiledExpr: TypeAlias = (
    Const
    | FieldRef
    | IndicatorCall
    | MathCall
    | Neg
    | Not
    | Arith
    | Compare
    | Logic
    | CompiledBetween
    | CompiledInList
    | CompiledCrosses
    | CompiledCase
    | CompiledAggregate
    | Snapshot
    | AccountRef
    | PositionRef
    | PositionAvgPriceRef
)


# ---------------------------------------------------------------------------------------------
# Actions.


class TimeInForce(Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    DAY = "DAY"


@dataclass(frozen=True, slots=True)
class SizeQuantity:
    """`SIZING q`: q units."""

    quantity: CompiledExpr


@dataclass(frozen=True, slots=True)
class SizeNotional:
    """`SIZING x USD`: x / entry price units."""

    amount: CompiledExpr


@dataclass(frozen=True, slots=True)
class SizePercentOf:
    """`SIZING f % OF EQUITY|BALANCE`: f is a fraction (0.02 = 2 %, as in 0.13); f·base / price."""

    fraction: CompiledExpr
    base: Literal["EQUITY", "BALANCE"]


@dataclass(frozen=True, slots=True)
class CompiledSizeRisk:
    """`SIZING RISK f` (equity·f / stop distance) or `SIZING RISK $ x` (x / stop distance).

    The compiler guarantees the action has a stop loss given BY a distance.
    """

    amount: CompiledExpr
    cash: bool


@dataclass(frozen=True, slots=True)
class SizePosition:
    """`SIZING POSITION.a`: |position in a's symbol|."""

    stream: str


CompiledSizing: TypeAlias = (
    SizeQuantity | SizeNotional | SizePercentOf | CompiledSizeRisk | SizePosition
)


@dataclass(frozen=True, slots=True)
class MarketOrder:
    pass


@dataclass(frozen=True, slots=True)
class LimitOrder:
    price: CompiledExpr


@dataclass(frozen=True, slots=True)
class StopOrder:
    """`STOP AT s` or, with `limit`, `STOP AT s LIMIT AT l` (a stop-limit)."""

    stop: CompiledExpr
    limit: CompiledExpr | None


@dataclass(frozen=True, slots=True)
class TrailingOrder:
    """`TRAILING BY d` (absolute distance) or `TRAILING PCT f` (fraction of price)."""

    amount: CompiledExpr
    percent: bool


CompiledOrderType: TypeAlias = MarketOrder | LimitOrder | StopOrder | TrailingOrder


@dataclass(frozen=True, slots=True)
class ExitLevel:
    """A bracket child: `AT` price, `BY` distance from entry, `PCT` fraction of entry, `RR` x
    times the stop distance (take profit only)."""

    kind: Literal["AT", "BY", "PCT", "RR"]
    value: CompiledExpr


@dataclass(frozen=True, slots=True)
class Bracket:
    """Entry, then once filled a stop loss and a take profit that cancel each other."""

    stop_loss: ExitLevel | None
    take_profit: ExitLevel | None


@dataclass(frozen=True, slots=True)
class Oco:
    """Two exits that cancel each other, placed instead of an entry: a stop order at `stop`
    and a limit order at `limit`, each on the action's side and size."""

    stop: CompiledExpr | None
    limit: CompiledExpr | None


@dataclass(frozen=True, slots=True)
class OrderAction:
    """`BUY a` / `SELL a` with every option resolved (inline options over DEFAULTS)."""

    side: Literal["BUY", "SELL"]
    stream: str
    sizing: CompiledSizing
    order_type: CompiledOrderType
    tif: TimeInForce
    bracket: Bracket | None
    oco: Oco | None
    # DEFAULTS `TRAILING = TRAILING BY|PCT x`: a trailing stop exit attached to every entry.
    trailing_exit: TrailingOrder | None


@dataclass(frozen=True, slots=True)
class CloseAction:
    """`CLOSE a`: flatten a's symbol with a market order."""

    stream: str


@dataclass(frozen=True, slots=True)
class CloseAllAction:
    """`CLOSE_ALL`: flatten every position of the strategy."""


@dataclass(frozen=True, slots=True)
class LogAction:
    """`LOG 'text'`: an INFO line in the strategy's log."""

    text: str


CompiledAction: TypeAlias = OrderAction | CloseAction | CloseAllAction | LogAction


# ---------------------------------------------------------------------------------------------
# The program.


@dataclass(frozen=True, slots=True)
class StreamDecl:
    """`alias = BROKER:SYMBOL EVERY tf`."""

    alias: str
    key: CandleKey
    span: Span


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One evaluated rule (FOR EACH already expanded); `index` is its position in file order."""

    index: int
    stream: str
    condition: CompiledExpr
    action: CompiledAction
    span: Span
    text: str  # the rule's source, whitespace folded, for logs and signals


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled strategy."""

    name: str
    version: int
    path: str
    streams: tuple[StreamDecl, ...]
    rules: tuple[CompiledRule, ...]
    slot_count: int
    warmup: int | None = None  # `WARMUP n`: at least n candles of history per key

    def history_needed(self) -> dict[CandleKey, int]:
        """Closed candles of history each key needs before its first live candle for every
        indicator, lag, aggregate and CROSSES to be warm and settled (values equal to those of
        a run over a long history, to 1e-9): see qkt.dsl.history."""
        from qkt.dsl.history import history_needed  # history walks these classes: import late

        return history_needed(self)

    def stream(self, alias: str) -> StreamDecl:
        """The declaration of `alias` (the compiler guarantees it exists)."""
        for decl in self.streams:
            if decl.alias == alias:
                return decl
        raise KeyError(alias)

    def with_broker(self, broker: str) -> Program:
        """The same program with every stream on `broker` (`--sim` puts everything on SIM).

        Rewriting the keys (not just the feed) keeps a simulated deployment from sharing, and
        ref-counting, the real market's key in a daemon's hub.
        """
        streams = tuple(
            replace(decl, key=replace(decl.key, broker=broker)) for decl in self.streams
        )
        return replace(self, streams=streams)

    @property
    def keys(self) -> tuple[CandleKey, ...]:
        """Distinct candle keys, in declaration order: what a worker subscribes to."""
        return tuple(dict.fromkeys(decl.key for decl in self.streams))
