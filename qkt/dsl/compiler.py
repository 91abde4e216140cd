"""A checked syntax tree -> `Program`: names resolved, LETs and FOR EACH expanded, DEFAULTS merged.

Only ever given a tree that passed `checker.check`. The one thing it still reports is an expansion
too large to run (LETs nest by macro expansion, so `a = b + b, b = c + c, ...` doubles each time).
"""

from __future__ import annotations

from typing import Final, NoReturn, cast

from qkt.dsl import nodes
from qkt.dsl import program as ir
from qkt.dsl.errors import DslError
from qkt.dsl.lowercalls import CallLowering, Scope
from qkt.dsl.nodes import Span
from qkt.market.models import CandleKey, Timeframe

MAX_EXPANDED_DEPTH: Final = 128
MAX_NODES: Final = 100_000


class ExpansionError(Exception):
    """The program would be too large once LETs are expanded."""

    def __init__(self, error: DslError) -> None:
        super().__init__(str(error))
        self.error = error


def compile_tree(tree: nodes.Strategy, path: str) -> ir.Program:
    """The Program of a checked tree; raises ExpansionError if it expands past our limits."""
    return _Compiler(tree, path).program()


class _Compiler(CallLowering):
    def __init__(self, tree: nodes.Strategy, path: str) -> None:
        self.tree = tree
        self.path = path
        self.lets = {let.name: let.expr for let in reversed(tree.lets)}  # the first one wins
        self.defaults = {clause.name: clause.value for clause in reversed(tree.defaults)}
        self.slots = 0
        self.nodes = 0
        self.calls = {}

    def program(self) -> ir.Program:
        streams = tuple(
            ir.StreamDecl(
                stream.alias,
                CandleKey(stream.broker, stream.symbol, Timeframe.parse(stream.timeframe)),
                stream.span,
            )
            for stream in self.tree.streams
        )
        rules: list[ir.CompiledRule] = []
        for item in self.tree.rules:
            if isinstance(item, nodes.ForEach):
                # Expanded in place, in list order; each copy gets its own slots.
                for alias in item.aliases:
                    loop = (item.var, alias.name)
                    rules.append(self.rule(len(rules), item.rule, loop, item.span, item.text))
            else:
                rules.append(self.rule(len(rules), item, None, item.span, item.text))
        return ir.Program(
            name=self.tree.name,
            version=self.tree.version,
            path=self.path,
            streams=streams,
            rules=tuple(rules),
            slot_count=self.slots,
            warmup=self.tree.warmup,
        )

    def slot(self) -> int:
        self.slots += 1
        return self.slots - 1

    def rule(
        self, index: int, rule: nodes.Rule, loop: tuple[str, str] | None, where: Span, text: str
    ) -> ir.CompiledRule:
        action = rule.action
        if isinstance(action, nodes.Order | nodes.Close):
            stream = loop[1] if loop and action.alias == loop[0] else action.alias
        else:  # CLOSE_ALL and LOG belong to the first declared stream (dsl.md)
            stream = self.tree.streams[0].alias
        scope = Scope(stream, loop, None, where)
        condition = self.expr(rule.condition, scope, 0)
        return ir.CompiledRule(index, stream, condition, self.action(action, scope), where, text)

    # -- actions

    def action(self, action: nodes.Action, scope: Scope) -> ir.CompiledAction:
        match action:
            case nodes.Order():
                return self.order(action, scope)
            case nodes.Close():
                return ir.CloseAction(scope.stream)
            case nodes.CloseAll():
                return ir.CloseAllAction()
            case nodes.Log():
                return ir.LogAction(action.text)
            case nodes.Cancel() | nodes.CancelAll():
                raise ValueError("CANCEL reached the compiler: the checker rejects it")

    def order(self, order: nodes.Order, scope: Scope) -> ir.OrderAction:
        inline = {type(option): option for option in reversed(order.options)}
        # DEFAULTS are lowered per action: SYMBOL is this action's stream, and slots are its own.
        defaults = Scope(scope.stream, None, scope.stream, scope.origin)

        sizing_opt = inline.get(nodes.SizingOpt)
        if isinstance(sizing_opt, nodes.SizingOpt):
            sizing = self.sizing(sizing_opt.sizing, scope)
        else:
            sizing = self.sizing(cast(nodes.Sizing, self.defaults["SIZING"]), defaults)

        type_opt = inline.get(nodes.OrderTypeOpt)
        order_type: ir.CompiledOrderType = ir.MarketOrder()
        if isinstance(type_opt, nodes.OrderTypeOpt):
            order_type = self.order_type(type_opt.order_type, scope)
        elif "ORDER_TYPE" in self.defaults:
            order_type = self.order_type(
                cast(nodes.OrderType, self.defaults["ORDER_TYPE"]), defaults
            )

        tif_opt = inline.get(nodes.TifOpt)
        tif_node = tif_opt.tif if isinstance(tif_opt, nodes.TifOpt) else self.defaults.get("TIF")
        tif = (
            ir.TimeInForce(tif_node.kind) if isinstance(tif_node, nodes.Tif) else ir.TimeInForce.GTC
        )

        oco_opt = inline.get(nodes.OcoOpt)
        if isinstance(oco_opt, nodes.OcoOpt):
            # An OCO is two exits for the current position, not an entry: no bracket, no trail.
            legs = {leg.which: self.expr(leg.price, scope, 0) for leg in oco_opt.children}
            oco = ir.Oco(stop=legs.get("STOP"), limit=legs.get("LIMIT"))
            return ir.OrderAction(
                order.side, scope.stream, sizing, order_type, tif, None, oco, None
            )

        bracket_opt = inline.get(nodes.BracketOpt)
        children = bracket_opt.children if isinstance(bracket_opt, nodes.BracketOpt) else ()
        levels = {child.which: (child.exit, scope) for child in children}
        for name in ("STOP_LOSS", "TAKE_PROFIT"):
            default = self.defaults.get(name)
            if name not in levels and isinstance(default, nodes.Exit):
                levels[name] = (default, defaults)  # inline children win over DEFAULTS ones
        bracket = None
        if levels:
            stop, take = levels.get("STOP_LOSS"), levels.get("TAKE_PROFIT")
            bracket = ir.Bracket(
                stop_loss=self.exit_level(*stop) if stop else None,
                take_profit=self.exit_level(*take) if take else None,
            )

        trailing = None
        trail = self.defaults.get("TRAILING")
        if isinstance(trail, nodes.Trailing):
            trailing = ir.TrailingOrder(self.expr(trail.amount, defaults, 0), trail.percent)
        return ir.OrderAction(
            order.side, scope.stream, sizing, order_type, tif, bracket, None, trailing
        )

    def sizing(self, sizing: nodes.Sizing, scope: Scope) -> ir.CompiledSizing:
        match sizing:
            case nodes.SizeQty():
                return ir.SizeQuantity(self.expr(sizing.amount, scope, 0))
            case nodes.SizeUsd():
                return ir.SizeNotional(self.expr(sizing.amount, scope, 0))
            case nodes.SizePct():
                return ir.SizePercentOf(self.expr(sizing.fraction, scope, 0), sizing.base)
            case nodes.SizeRisk():
                return ir.CompiledSizeRisk(self.expr(sizing.amount, scope, 0), sizing.cash)
            case nodes.SizePos():
                return ir.SizePosition(scope.alias(sizing.alias))

    def order_type(self, order_type: nodes.OrderType, scope: Scope) -> ir.CompiledOrderType:
        match order_type:
            case nodes.Market():
                return ir.MarketOrder()
            case nodes.Limit():
                return ir.LimitOrder(self.expr(order_type.price, scope, 0))
            case nodes.Stop():
                stop = self.expr(order_type.stop, scope, 0)
                limit = order_type.limit
                return ir.StopOrder(stop, self.expr(limit, scope, 0) if limit else None)
            case nodes.Trailing():
                return ir.TrailingOrder(self.expr(order_type.amount, scope, 0), order_type.percent)

    def exit_level(self, level: nodes.Exit, scope: Scope) -> ir.ExitLevel:
        return ir.ExitLevel(level.kind, self.expr(level.value, scope, 0))

    # -- expressions

    def expr(self, expr: nodes.Expr, scope: Scope, depth: int) -> ir.CompiledExpr:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(
                scope,
                f"the strategy expands to more than {MAX_NODES} nodes (LETs used "
                "several times inside other LETs multiply)",
            )
        if depth > MAX_EXPANDED_DEPTH:
            self.fail(
                scope,
                f"this rule nests more than {MAX_EXPANDED_DEPTH} levels deep once "
                "its LETs are expanded",
            )
        down = depth + 1
        match expr:
            case nodes.Num() | nodes.Bool():
                return ir.Const(expr.value)
            case nodes.Name():
                return self.expr(self.lets[expr.name], scope, down)  # a LET is a macro
            case nodes.Field():
                field = "close" if expr.field == "price" else expr.field
                return ir.FieldRef(scope.alias(expr.alias), cast(ir.FieldName, field))
            case nodes.Call():
                return self.call(expr, scope, down)
            case nodes.Snap():
                value = self.expr(self.lets[expr.name], scope, down)
                slot = self.slot()
                return ir.Snapshot(slot, expr.name, value, expr.kind, expr.lag, scope.stream)
            case nodes.Accessor(kind="ACCOUNT"):
                return ir.AccountRef(cast(ir.AccountField, expr.name))
            case nodes.Accessor(kind="POSITION"):
                return ir.PositionRef(scope.alias(expr.name))
            case nodes.Accessor():
                return ir.PositionAvgPriceRef(scope.alias(expr.name))
            case nodes.Unary(op="-"):
                return ir.Neg(self.expr(expr.operand, scope, down))
            case nodes.Unary():
                return ir.Not(self.expr(expr.operand, scope, down))
            case nodes.Binary():
                return self.binary(expr, scope, down)
            case nodes.Between():
                value = self.expr(expr.value, scope, down)
                low = self.expr(expr.low, scope, down)
                return ir.CompiledBetween(value, low, self.expr(expr.high, scope, down))
            case nodes.InList():
                value = self.expr(expr.value, scope, down)
                options = tuple(self.expr(option, scope, down) for option in expr.options)
                return ir.CompiledInList(value, options)
            case nodes.Crosses():
                left = self.expr(expr.left, scope, down)
                right = self.expr(expr.right, scope, down)
                return ir.CompiledCrosses(self.slot(), expr.direction, left, right)
            case nodes.Case():
                branches = tuple(
                    (self.expr(when, scope, down), self.expr(then, scope, down))
                    for when, then in expr.branches
                )
                return ir.CompiledCase(branches, self.expr(expr.default, scope, down))
            case nodes.Aggregate():
                operand = self.expr(expr.operand, scope, down)
                return ir.CompiledAggregate(
                    self.slot(), expr.func, operand, expr.window, scope.stream
                )
            case nodes.SymbolRef():
                raise ValueError("a bare SYMBOL reached the compiler: the checker rejects it")

    def binary(self, expr: nodes.Binary, scope: Scope, depth: int) -> ir.CompiledExpr:
        left = self.expr(expr.left, scope, depth)
        right = self.expr(expr.right, scope, depth)
        match expr.op:
            case "+" | "-" | "*" | "/":
                return ir.Arith(expr.op, left, right)
            case "AND" | "OR":
                return ir.Logic(expr.op, left, right)
            case _:
                return ir.Compare(expr.op, left, right)

    def fail(self, scope: Scope, message: str) -> NoReturn:
        where = scope.origin
        raise ExpansionError(DslError(message, self.path, where.line, where.col))
