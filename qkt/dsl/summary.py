"""A JSON-able, readable summary of a compiled Program (what `qkt check` and golden tests show).

Expressions are rendered back into .qkt-like text, with names resolved (LETs expanded, `price` as
`close`) and each stateful call site's slot after a `#`: `EMA#0(btc.close, 12)`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Final

from qkt.dsl import program as ir
from qkt.dsl.catalog import INDICATORS

# Binding strength, as in dsl.md's grammar: or < and < not < cmp < add < mul < unary < primary.
_OR, _AND, _NOT, _CMP, _ADD, _MUL, _UNARY, _ATOM = range(1, 9)
_ARITH_LEVEL: Final = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL}
# A slot number after a call or CROSSES (`EMA#0`): `#` appears nowhere else in an expression.
_SLOT: Final = re.compile(r"#\d+")


def summarize(program: ir.Program) -> dict[str, Any]:
    """Name, version, streams with their keys, rules (stream, condition, action), slot count."""
    return {
        "name": program.name,
        "version": program.version,
        "streams": [
            {"alias": decl.alias, "key": str(decl.key), "line": decl.span.line}
            for decl in program.streams
        ],
        "keys": [str(key) for key in program.keys],
        "rules": [
            {
                "index": rule.index,
                "line": rule.span.line,
                "stream": rule.stream,
                "text": rule.text,
                "when": render(rule.condition),
                "action": action(rule.action),
            }
            for rule in program.rules
        ],
        "slot_count": program.slot_count,
        # Closed candles of history each key needs to be warm (Program.history_needed).
        "history": {str(key): count for key, count in program.history_needed().items()},
    }


def action(node: ir.CompiledAction) -> dict[str, Any]:
    """An action as a small dict: its kind, stream and every option, rendered."""
    match node:
        case ir.OrderAction():
            bracket = node.bracket
            return {
                "kind": node.side,
                "stream": node.stream,
                "sizing": sizing(node.sizing),
                "order_type": order_type(node.order_type),
                "tif": node.tif.value,
                "bracket": None
                if bracket is None
                else {
                    "stop_loss": exit_level(bracket.stop_loss),
                    "take_profit": exit_level(bracket.take_profit),
                },
                "oco": None
                if node.oco is None
                else {"stop": maybe(node.oco.stop), "limit": maybe(node.oco.limit)},
                "trailing_exit": None
                if node.trailing_exit is None
                else order_type(node.trailing_exit),
            }
        case ir.CloseAction():
            return {"kind": "CLOSE", "stream": node.stream}
        case ir.CloseAllAction():
            return {"kind": "CLOSE_ALL"}
        case ir.LogAction():
            return {"kind": "LOG", "text": node.text}


def sizing(node: ir.CompiledSizing) -> str:
    match node:
        case ir.SizeQuantity():
            return render(node.quantity)
        case ir.SizeNotional():
            return f"{render(node.amount)} USD"
        case ir.SizePercentOf():
            return f"{render(node.fraction)} % OF {node.base}"
        case ir.CompiledSizeRisk():
            return f"RISK {'$ ' if node.cash else ''}{render(node.amount)}"
        case ir.SizePosition():
            return f"POSITION.{node.stream}"


def order_type(node: ir.CompiledOrderType) -> str:
    match node:
        case ir.MarketOrder():
            return "MARKET"
        case ir.LimitOrder():
            return f"LIMIT AT {render(node.price)}"
        case ir.StopOrder():
            limit = f" LIMIT AT {render(node.limit)}" if node.limit is not None else ""
            return f"STOP AT {render(node.stop)}{limit}"
        case ir.TrailingOrder():
            return f"TRAILING {'PCT' if node.percent else 'BY'} {render(node.amount)}"


def exit_level(node: ir.ExitLevel | None) -> str | None:
    return None if node is None else f"{node.kind} {render(node.value)}"


def maybe(node: ir.CompiledExpr | None) -> str | None:
    return None if node is None else render(node)


def render(node: ir.CompiledExpr | ir.CandleRef) -> str:
    """An expression as .qkt-like text, parenthesised only where precedence needs it."""
    return _render(node)[0]


def plain(node: ir.CompiledExpr | ir.CandleRef) -> str:
    """`render` without slot numbers, as a trader writes it: `EMA(btc.close, 50)`."""
    return _SLOT.sub("", render(node))


def _wrap(node: ir.CompiledExpr, level: int) -> str:
    text, own = _render(node)
    return text if own >= level else f"({text})"


def _render(node: ir.CompiledExpr | ir.CandleRef) -> tuple[str, int]:
    match node:
        case ir.Const(value=bool() as flag):
            return ("TRUE" if flag else "FALSE"), _ATOM
        case ir.Const(value=Decimal() as number):
            return str(number), _ATOM
        case ir.FieldRef():
            return f"{node.stream}.{node.field}", _ATOM
        case ir.CandleRef():
            return f"{node.stream}.candle", _ATOM
        case ir.IndicatorCall():
            return _indicator(node), _ATOM
        case ir.MathCall():
            return f"{node.func}({', '.join(render(arg) for arg in node.args)})", _ATOM
        case ir.Neg():
            # `--x` would read as a comment: a nested minus gets parentheses.
            inner = _wrap(node.operand, _ATOM if isinstance(node.operand, ir.Neg) else _UNARY)
            return f"-{inner}", _UNARY
        case ir.Not():
            return f"NOT {_wrap(node.operand, _NOT)}", _NOT
        case ir.Arith():
            level = _ARITH_LEVEL[node.op]
            return f"{_wrap(node.left, level)} {node.op} {_wrap(node.right, level + 1)}", level
        case ir.Compare():
            return f"{_wrap(node.left, _CMP)} {node.op} {_wrap(node.right, _ADD)}", _CMP
        case ir.Logic():
            level = _OR if node.op == "OR" else _AND
            return f"{_wrap(node.left, level)} {node.op} {_wrap(node.right, level + 1)}", level
        case ir.CompiledBetween():
            low, high = _wrap(node.low, _ADD), _wrap(node.high, _ADD)
            return f"{_wrap(node.value, _CMP)} BETWEEN {low} AND {high}", _CMP
        case ir.CompiledInList():
            options = ", ".join(render(option) for option in node.options)
            return f"{_wrap(node.value, _CMP)} IN [{options}]", _CMP
        case ir.CompiledCrosses():
            left, right = _wrap(node.left, _CMP), _wrap(node.right, _ADD)
            return f"{left} CROSSES#{node.slot} {node.direction} {right}", _CMP
        case ir.CompiledCase():
            branches = " ".join(f"WHEN {render(c)} THEN {render(v)}" for c, v in node.branches)
            return f"CASE {branches} ELSE {render(node.default)} END", _ATOM
        case ir.CompiledAggregate():
            since = "OPEN" if node.window is None else f"T-{node.window}"
            return f"{node.func}#{node.slot}({render(node.operand)}) SINCE {since}", _ATOM
        case ir.Snapshot():
            when = f"T-{node.lag}" if node.kind == "T" else node.kind
            return f"{node.let}@{when}#{node.slot}{{{render(node.value)}}}", _ATOM
        case ir.AccountRef():
            return f"ACCOUNT.{node.field}", _ATOM
        case ir.PositionRef():
            return f"POSITION.{node.stream}", _ATOM
        case ir.PositionAvgPriceRef():
            return f"POSITION_AVG_PRICE.{node.stream}", _ATOM
    raise TypeError(f"not an expression: {node!r}")


def _indicator(node: ir.IndicatorCall) -> str:
    """`EMA#0(btc.close, 12)`, `MACD#1(btc.close, 12, 26, 9).signal`, every parameter shown."""
    args = [render(node.source)]
    if node.other is not None:
        args.append(render(node.other))
    args += [
        f"{param:g}" if param != int(param) else str(int(param)) for param in node.args().params
    ]
    spec = INDICATORS[node.name]
    if spec.matype and node.matype and node.matype != spec.matype:
        args.append(f"MATYPE={node.matype}")
    if node.name == "VWAP" and node.anchor != "1d":
        args.append(f"ANCHOR={node.anchor}")
    field = f".{node.output}" if node.output else ""
    return f"{node.name}#{node.slot}({', '.join(args)}){field}"
