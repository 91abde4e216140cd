"""The compiled actions of a `Program`: what a rule does when it fires, every option resolved
(sizing, order type, TIF, bracket, OCO, trailing exit).

Its own module: what the engine turns into orders, apart from the expressions it evaluates.
`qkt.dsl.program` re-exports every name, and stays the place to import them from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, TypeAlias

from qkt.dsl.compiled_exprs import CompiledExpr

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
