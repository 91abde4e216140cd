"""How many closed candles of history a compiled program needs per key to be warm.

For each expression, the candles of each stream it reads that must have closed for its value
to be defined and settled at the newest one:
- a field: 1;
- an indicator: its source's count plus its TA-Lib lookback plus, for smoothing ones (EMA,
  Wilder), the values it takes to forget its seed to 1e-9 (catalog `settle`); nested ones add up;
- `x@T-N`: x's count + N; `f(x) SINCE T-N`: x's + N − 1; `CROSSES`: + 1 (a previous side);
- anything else: the largest of its parts.
A count is capped at `MAX_HISTORY` (5,000) a key; `WARMUP n` in the file raises every key to at
least n. Lags and windows count closes of the rule's stream; where a rule mixes timeframes the
count is applied to every stream it reads (a safe over-estimate).
"""

from __future__ import annotations

from qkt.dsl import program as ir
from qkt.dsl.catalog import INDICATORS, MAX_HISTORY, history_of
from qkt.market.models import CandleKey

Needs = dict[str, int]  # stream alias -> candles


def history_needed(program: ir.Program) -> dict[CandleKey, int]:
    """Candles of history per key (every key of the program, 0 if it needs none)."""
    timeframes = {decl.alias: decl.key.timeframe.ms for decl in program.streams}
    found: Needs = {}
    for rule in program.rules:
        for expr in (rule.condition, *_action_exprs(rule.action)):
            _merge(found, _needs(expr, timeframes))
    result = {key: 0 for key in program.keys}
    for decl in program.streams:
        count = min(found.get(decl.alias, 0), MAX_HISTORY)
        result[decl.key] = max(result[decl.key], count, program.warmup or 0)
    return result


def _merge(into: Needs, more: Needs) -> None:
    for alias, count in more.items():
        into[alias] = max(into.get(alias, 0), count)


def _shift(needs: Needs, extra: int) -> Needs:
    return {alias: count + extra for alias, count in needs.items()}


def _needs(expr: ir.CompiledExpr | ir.CandleRef, timeframes: dict[str, int]) -> Needs:
    match expr:
        case ir.FieldRef() | ir.CandleRef():
            return {expr.stream: 1}
        case ir.IndicatorCall():
            found = _needs(expr.source, timeframes)
            if expr.other is not None:
                _merge(found, _needs(expr.other, timeframes))
            spec = INDICATORS[expr.name]
            own = history_of(spec, expr.args(), timeframes.get(expr.root, 60_000))
            return _shift(found, own)
        case ir.Snapshot(kind="T"):
            return _shift(_needs(expr.value, timeframes), expr.lag)
        case ir.CompiledAggregate(window=int() as window):
            return _shift(_needs(expr.operand, timeframes), window - 1)
        case ir.CompiledCrosses():
            found = _needs(expr.left, timeframes)
            _merge(found, _needs(expr.right, timeframes))
            return _shift(found, 1)
    found = {}
    for child in _children(expr):
        _merge(found, _needs(child, timeframes))
    return found


def _children(expr: ir.CompiledExpr) -> tuple[ir.CompiledExpr, ...]:
    match expr:
        case ir.Neg(operand=operand) | ir.Not(operand=operand):
            return (operand,)
        case ir.CompiledAggregate(operand=operand) | ir.Snapshot(value=operand):
            return (operand,)
        case ir.Arith() | ir.Compare() | ir.Logic():
            return (expr.left, expr.right)
        case ir.CompiledBetween():
            return (expr.value, expr.low, expr.high)
        case ir.CompiledInList():
            return (expr.value, *expr.options)
        case ir.CompiledCase():
            return (*(part for branch in expr.branches for part in branch), expr.default)
        case ir.MathCall():
            return expr.args
    return ()


def _action_exprs(action: ir.CompiledAction) -> tuple[ir.CompiledExpr, ...]:
    """The expressions of an order's sizing, prices and exits (an ATR stop needs history too)."""
    if not isinstance(action, ir.OrderAction):
        return ()
    found: list[ir.CompiledExpr | None] = []
    sizing, order = action.sizing, action.order_type
    if isinstance(sizing, ir.SizeQuantity):
        found.append(sizing.quantity)
    elif isinstance(sizing, ir.SizeNotional | ir.CompiledSizeRisk):
        found.append(sizing.amount)
    elif isinstance(sizing, ir.SizePercentOf):
        found.append(sizing.fraction)
    if isinstance(order, ir.LimitOrder):
        found.append(order.price)
    elif isinstance(order, ir.StopOrder):
        found += [order.stop, order.limit]
    elif isinstance(order, ir.TrailingOrder):
        found.append(order.amount)
    if action.bracket is not None:
        for level in (action.bracket.stop_loss, action.bracket.take_profit):
            found.append(None if level is None else level.value)
    if action.oco is not None:
        found += [action.oco.stop, action.oco.limit]
    if action.trailing_exit is not None:
        found.append(action.trailing_exit.amount)
    return tuple(expr for expr in found if expr is not None)
