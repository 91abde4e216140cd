"""The checker's expression half: names resolve, types agree, each construct is where it may be."""

from __future__ import annotations

from qkt.dsl import nodes
from qkt.dsl.callcheck import check_call
from qkt.dsl.errors import DslError
from qkt.dsl.expressions import MAX_COUNT
from qkt.dsl.nodes import Span
from qkt.dsl.scope import (
    ACCOUNT_FIELDS,
    FIELDS,
    Context,
    Type,
    Where,
    suggest,
)
from qkt.dsl.tokens import KEYWORDS

_ARITHMETIC = ("+", "-", "*", "/")
_ORDERING = (">", "<", ">=", "<=")
_EQUALITY = ("==", "!=")


class ExprChecker:
    """Types and checks expressions; errors go to `errors`, one per mistake."""

    def __init__(self, tree: nodes.Strategy, path: str) -> None:
        self.tree = tree
        self.path = path
        self.errors: list[DslError] = []
        self.broken = set(tree.broken)
        self.aliases: dict[str, nodes.Stream] = {}
        self.lets: dict[str, nodes.Let] = {}
        self.cyclic: set[str] = set()
        self.let_types: dict[str, Type | None] = {}
        # LET name -> the condition-only construct it uses ("CROSSES", ...), if any.
        self.let_condition_only: dict[str, str] = {}
        # While checking a LET body: the first condition-only construct found in it.
        self.found_condition_only: str | None = None

    def error(self, where: Span, message: str) -> None:
        self.errors.append(DslError(message, self.path, where.line, where.col))

    def want(self, expr: nodes.Expr, ctx: Context, expected: Type) -> None:
        """Check `expr` and report it if it does not yield `expected`."""
        got = self.expr(expr, ctx)
        if got is not None and got is not expected:
            self.error(expr.span, f"expected {expected.value} here, got {got.value}")

    def alias(self, name: str, where: Span, ctx: Context) -> bool:
        """True if `name` is a stream alias here (or the FOR EACH variable); else report it."""
        if name in self.aliases or name == ctx.loop_var:
            return True
        if name in self.broken:
            return False
        if name in self.lets:
            self.error(where, f"'{name}' is a LET, not a stream alias")
        else:
            hint = suggest(name, list(self.aliases) + ([ctx.loop_var] if ctx.loop_var else []))
            self.error(where, f"unknown alias '{name}'{hint}")
        return False

    def condition_only(self, what: str, where: Span, ctx: Context, let: str = "") -> None:
        """CROSSES, aggregates and snapshots keep state per evaluation: conditions only."""
        if ctx.where is Where.LET:
            self.found_condition_only = self.found_condition_only or what
        elif ctx.where is not Where.CONDITION:
            subject = f"'{let}' uses {what}, which" if let else what
            self.error(
                where, f"{subject} is only valid in a rule's condition, not in {ctx.where.value}"
            )

    def expr(self, expr: nodes.Expr, ctx: Context) -> Type | None:
        """The type of `expr`, or None if a mistake in it makes that unknowable."""
        match expr:
            case nodes.Num():
                return Type.NUMBER
            case nodes.Bool():
                return Type.CONDITION
            case nodes.Name():
                return self.name(expr, ctx)
            case nodes.Field():
                return self.field(expr, ctx)
            case nodes.Call():
                return self.call(expr, ctx)
            case nodes.Snap():
                return self.snap(expr, ctx)
            case nodes.Accessor():
                return self.accessor(expr, ctx)
            case nodes.SymbolRef():
                self.symbol(expr.span, ctx)
                return None
            case nodes.Unary(op="-"):
                self.want(expr.operand, ctx, Type.NUMBER)
                return Type.NUMBER
            case nodes.Unary():
                self.want(expr.operand, ctx, Type.CONDITION)
                return Type.CONDITION
            case nodes.Binary():
                return self.binary(expr, ctx)
            case nodes.Between():
                for part in (expr.value, expr.low, expr.high):
                    self.want(part, ctx, Type.NUMBER)
                return Type.CONDITION
            case nodes.InList():
                for part in (expr.value, *expr.options):
                    self.want(part, ctx, Type.NUMBER)
                return Type.CONDITION
            case nodes.Crosses():
                self.condition_only("CROSSES", expr.op_span, ctx)
                self.want(expr.left, ctx, Type.NUMBER)
                self.want(expr.right, ctx, Type.NUMBER)
                return Type.CONDITION
            case nodes.Case():
                return self.case(expr, ctx)
            case nodes.Aggregate():
                since = "OPEN" if expr.window is None else f"T-{expr.window}"
                self.condition_only(f"{expr.func}(...) SINCE {since}", expr.span, ctx)
                if expr.window is not None:
                    self.count(expr.window, expr.window_span, "SINCE T-N")
                self.want(expr.operand, ctx, Type.NUMBER)
                return Type.NUMBER

    def name(self, expr: nodes.Name, ctx: Context) -> Type | None:
        name = expr.name
        if name in self.lets:
            what = self.let_condition_only.get(name)
            if what is not None:
                self.condition_only(what, expr.span, ctx, let=name)
            return self.let_types.get(name)
        if name in self.broken or (ctx.loop_broken and name == ctx.loop_var):
            return None
        if name in self.aliases or name == ctx.loop_var:
            self.error(expr.span, f"'{name}' stands for a stream: use a field, e.g. {name}.close")
        elif name.upper() in KEYWORDS:  # bare `open` / `close`
            self.error(expr.span, f"'{name}' needs a stream: write e.g. btc.{name.lower()}")
        else:
            self.error(expr.span, f"unknown name '{name}'{suggest(name, self.lets)}")
        return None

    def field(self, expr: nodes.Field, ctx: Context) -> Type | None:
        if not self.alias(expr.alias, expr.span, ctx):
            return None
        if expr.field == "candle":
            self.error(
                expr.span,
                f"{expr.alias}.candle is only valid as a candle indicator's first argument, "
                f"e.g. ATR({expr.alias}.candle, 14)",
            )
            return None
        if expr.field not in FIELDS:
            self.error(
                expr.field_span,
                f"unknown field '{expr.field}' of {expr.alias}: "
                "use open, high, low, close, volume or price",
            )
            return None
        return Type.NUMBER

    def call(self, expr: nodes.Call, ctx: Context) -> Type | None:
        return check_call(self, expr, ctx)

    def count(self, value: int, where: Span, what: str) -> None:
        if not 1 <= value <= MAX_COUNT:
            self.error(where, f"N in {what} must be from 1 to {MAX_COUNT}")

    def snap(self, expr: nodes.Snap, ctx: Context) -> Type | None:
        when = f"T-{expr.lag}" if expr.kind == "T" else expr.kind
        self.condition_only(f"the snapshot {expr.name}@{when}", expr.span, ctx)
        if expr.kind == "T":
            self.count(expr.lag, expr.lag_span, "@T-N")
        if expr.name in self.lets:
            return self.let_types.get(expr.name)
        if expr.name in self.broken:
            return None
        if expr.name in self.aliases or expr.name == ctx.loop_var:
            self.error(expr.span, f"'{expr.name}' stands for a stream: snapshots (@) are of LETs")
        else:
            self.error(expr.span, f"unknown LET '{expr.name}'{suggest(expr.name, self.lets)}")
        return None

    def accessor(self, expr: nodes.Accessor, ctx: Context) -> Type | None:
        if expr.kind == "OPEN_ORDERS":
            self.error(expr.span, "OPEN_ORDERS is not yet supported")
            return None
        if expr.kind == "ACCOUNT":
            if expr.name not in ACCOUNT_FIELDS:
                self.error(
                    expr.name_span,
                    f"unknown ACCOUNT field '{expr.name}': use {', '.join(ACCOUNT_FIELDS)}",
                )
                return None
        elif not self.alias(expr.name, expr.name_span, ctx):
            return None
        return Type.NUMBER

    def symbol(self, where: Span, ctx: Context) -> None:
        if ctx.where is Where.DEFAULTS:
            self.error(where, "SYMBOL stands for the action's stream: use it as ATR(SYMBOL, n)")
        else:
            self.error(where, "SYMBOL is only valid in DEFAULTS, e.g. ATR(SYMBOL, 14)")

    def binary(self, expr: nodes.Binary, ctx: Context) -> Type | None:
        if expr.op in _ARITHMETIC or expr.op in _ORDERING:
            self.want(expr.left, ctx, Type.NUMBER)
            self.want(expr.right, ctx, Type.NUMBER)
            return Type.NUMBER if expr.op in _ARITHMETIC else Type.CONDITION
        if expr.op in _EQUALITY:
            left = self.expr(expr.left, ctx)
            right = self.expr(expr.right, ctx)
            if left is not None and right is not None and left is not right:
                self.error(expr.right.span, f"cannot compare {left.value} with {right.value}")
            return Type.CONDITION
        self.want(expr.left, ctx, Type.CONDITION)
        self.want(expr.right, ctx, Type.CONDITION)
        return Type.CONDITION

    def case(self, expr: nodes.Case, ctx: Context) -> Type | None:
        result: Type | None = None
        for condition, value in expr.branches:
            self.want(condition, ctx, Type.CONDITION)
            result = self.same(value, ctx, result)
        return self.same(expr.default, ctx, result)

    def same(self, value: nodes.Expr, ctx: Context, expected: Type | None) -> Type | None:
        """CASE values all yield one type: the first known one."""
        if expected is None:
            return self.expr(value, ctx)
        self.want(value, ctx, expected)
        return expected
