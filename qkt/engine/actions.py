"""Turns a fired `BUY`/`SELL` action into an order request: prices, exits and size (dsl.md
"Actions"), or a reason to skip it.

- Every price, distance and size expression is evaluated when the rule fires. If one is
  undefined (an indicator not warm yet, a division by zero) or not positive, the action is
  skipped with a warning logged once per rule; the engine keeps going.
- Sizing needs an entry price: the signal candle's close for market and trailing orders, the
  limit for limit and stop-limit orders, the stop for stop orders. `q USD` = q / entry,
  `f % OF EQUITY|BALANCE` = f * base / entry (f a fraction), `RISK f` = equity * f / stop
  distance, `RISK $ x` = x / stop distance (distance: `BY d` = d, `PCT f` = entry * f,
  `AT p` = |entry - p|), `POSITION.a` = |position in a's symbol|.
- The quantity is rounded *down* to `EngineConfig.qty_step` (1e-8 by default); zero, negative or
  undefined skips the action. Prices are rounded to 16 significant digits; there are no tick
  sizes on the paper market.
- `OCO { STOP AT s, LIMIT AT l }` places two exits for the position: a SELL OCO needs a long
  position and a BUY OCO a short one, else it is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Context, Decimal
from typing import Final

from qkt.dsl.program import (
    CompiledExpr,
    CompiledSizeRisk,
    ExitLevel,
    LimitOrder,
    MarketOrder,
    OrderAction,
    SizeNotional,
    SizePercentOf,
    SizePosition,
    SizeQuantity,
    StopOrder,
    TrailingOrder,
)
from qkt.engine.evaluator import Evaluator
from qkt.engine.orders import ExitPlan, Instrument, Level, OrderKind, OrderRequest, Side, Trail
from qkt.engine.plan import Plan
from qkt.engine.portfolio import Portfolio
from qkt.engine.values import UNDEFINED, Undefined, to_price
from qkt.money import CONTEXT

# Wide enough that rounding a quantity to its step never runs out of digits.
_QTY_CONTEXT: Final = Context(prec=40)


@dataclass(frozen=True, slots=True)
class Skip:
    """Why an action did not turn into an order; `key` names it for "logged once"."""

    key: str
    message: str


@dataclass(frozen=True, slots=True)
class OcoRequest:
    """Two exits that cancel each other (the request's kind is not used)."""

    request: OrderRequest
    stop: Decimal | None
    limit: Decimal | None


class _Skipped(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.skip = Skip(key, message)


class ActionResolver:
    """Resolves fired order actions against the current values."""

    def __init__(
        self, plan: Plan, evaluator: Evaluator, portfolio: Portfolio, qty_step: Decimal
    ) -> None:
        self._plan = plan
        self._evaluator = evaluator
        self._portfolio = portfolio
        self._qty_step = qty_step

    def resolve(
        self, action: OrderAction, rule: int, price: Decimal
    ) -> OrderRequest | OcoRequest | Skip:
        """The order `action` asks for now, the signal candle's close being `price`."""
        try:
            return self._resolve(action, rule, price)
        except _Skipped as skipped:
            return skipped.skip

    def _resolve(self, action: OrderAction, rule: int, price: Decimal) -> OrderRequest | OcoRequest:
        instrument = self._plan.instruments[action.stream]
        side = Side(action.side)
        kind, limit, stop, trail = self._order_type(action)
        exits = self._exits(action)
        entry = {OrderKind.LIMIT: limit, OrderKind.STOP_LIMIT: limit, OrderKind.STOP: stop}.get(
            kind, price
        )
        assert entry is not None
        qty = self._size(action, entry, instrument)
        request = OrderRequest(
            instrument,
            side,
            kind,
            qty,
            action.tif,
            rule,
            limit=limit,
            stop=stop,
            trail=trail,
            exits=exits,
        )
        if action.oco is None:
            return request
        held = self._portfolio.position(instrument)
        if (side is Side.SELL and held <= 0) or (side is Side.BUY and held >= 0):
            raise _Skipped("oco", f"OCO {side.value} exits need a position to close; skipped")
        oco_stop = self._price(action.oco.stop, "exits", "the OCO stop price")
        oco_limit = self._price(action.oco.limit, "exits", "the OCO limit price")
        return OcoRequest(request, oco_stop, oco_limit)

    def _order_type(
        self, action: OrderAction
    ) -> tuple[OrderKind, Decimal | None, Decimal | None, Trail | None]:
        order = action.order_type
        if isinstance(order, MarketOrder) or action.oco is not None:
            return OrderKind.MARKET, None, None, None
        if isinstance(order, LimitOrder):
            return OrderKind.LIMIT, self._required(order.price, "the limit price"), None, None
        if isinstance(order, StopOrder):
            stop = self._required(order.stop, "the stop price")
            if order.limit is None:
                return OrderKind.STOP, None, stop, None
            return OrderKind.STOP_LIMIT, self._required(order.limit, "the limit price"), stop, None
        assert isinstance(order, TrailingOrder)
        amount = self._required(order.amount, "the trailing distance")
        return OrderKind.TRAILING, None, None, Trail(amount, order.percent)

    def _exits(self, action: OrderAction) -> ExitPlan | None:
        bracket = action.bracket
        trailing = None
        if action.trailing_exit is not None:
            amount = self._price(action.trailing_exit.amount, "exits", "the trailing exit distance")
            assert amount is not None
            trailing = Trail(amount, action.trailing_exit.percent)
        if (bracket is None or action.oco is not None) and trailing is None:
            return None
        stop_loss = take_profit = None
        if bracket is not None and action.oco is None:
            stop_loss = self._level(bracket.stop_loss, "the stop loss")
            take_profit = self._level(bracket.take_profit, "the take profit")
            if take_profit is not None and take_profit.kind == "RR" and stop_loss is None:
                raise _Skipped("exits", "TAKE PROFIT RR needs a STOP LOSS to measure; skipped")
        return ExitPlan(stop_loss, take_profit, trailing)

    def _level(self, level: ExitLevel | None, what: str) -> Level | None:
        if level is None:
            return None
        value = self._price(level.value, "exits", what)
        assert value is not None
        return Level(level.kind, value)

    def _size(self, action: OrderAction, entry: Decimal, instrument: Instrument) -> Decimal:
        sizing = action.sizing
        number = self._evaluator.number
        qty: Decimal | Undefined
        if isinstance(sizing, SizeQuantity):
            qty = number(sizing.quantity)
        elif isinstance(sizing, SizePosition):
            qty = abs(self._portfolio.position(self._plan.instruments[sizing.stream]))
        elif isinstance(sizing, SizeNotional):
            qty = _div(number(sizing.amount), entry)
        elif isinstance(sizing, SizePercentOf):
            base = self._portfolio.equity if sizing.base == "EQUITY" else self._portfolio.balance
            fraction = number(sizing.fraction)
            amount = UNDEFINED if fraction is UNDEFINED else CONTEXT.multiply(fraction, base)
            qty = _div(amount, entry)
        else:
            qty = self._risk_size(sizing, action, entry)
        if qty is UNDEFINED:
            raise _Skipped("size", "the size is undefined; skipped")
        rounded = qty.quantize(self._qty_step, rounding=ROUND_DOWN, context=_QTY_CONTEXT)
        if rounded <= 0:
            raise _Skipped("size", f"the size is {qty}, not above zero; skipped")
        return rounded

    def _risk_size(
        self, sizing: CompiledSizeRisk, action: OrderAction, entry: Decimal
    ) -> Decimal | Undefined:
        bracket = action.bracket
        if bracket is None or bracket.stop_loss is None:
            raise _Skipped("size", "RISK sizing needs a STOP LOSS; skipped")
        level = self._level(bracket.stop_loss, "the stop loss")
        assert level is not None
        if level.kind == "BY":
            distance = level.value
        elif level.kind == "PCT":
            distance = CONTEXT.multiply(entry, level.value)
        else:
            distance = abs(CONTEXT.subtract(entry, level.value))
        amount = self._evaluator.number(sizing.amount)
        if amount is UNDEFINED:
            return UNDEFINED
        risk = amount if sizing.cash else CONTEXT.multiply(self._portfolio.equity, amount)
        return _div(risk, distance)

    def _required(self, expr: CompiledExpr, what: str) -> Decimal:
        value = self._price(expr, "price", what)
        assert value is not None
        return value

    def _price(self, expr: CompiledExpr | None, key: str, what: str) -> Decimal | None:
        """A positive price or distance, rounded; skips the action if undefined or not positive."""
        if expr is None:
            return None
        value = self._evaluator.number(expr)
        if value is UNDEFINED:
            raise _Skipped(key, f"{what} is undefined (an indicator not warm yet?); skipped")
        if value <= 0:
            raise _Skipped(key, f"{what} is {value}, not above zero; skipped")
        return to_price(value)


def _div(amount: Decimal | Undefined, by: Decimal) -> Decimal | Undefined:
    if amount is UNDEFINED or by == 0:
        return UNDEFINED
    return CONTEXT.divide(amount, by)
