"""Semantic checks on a parsed file: every mistake the grammar cannot see, each at its position.

A tree that passes `check` compiles: the compiler relies on what is checked here.
"""

from __future__ import annotations

from qkt.dsl import nodes
from qkt.dsl.errors import DslError
from qkt.dsl.exprcheck import ExprChecker
from qkt.dsl.scope import Context, Type, Where
from qkt.market.models import Timeframe, TimeframeError

_DEFAULTS = Context(Where.DEFAULTS)


def check(tree: nodes.Strategy, path: str) -> list[DslError]:
    """Every semantic error of `tree` (the order is fixed by the caller's sort)."""
    checker = Checker(tree, path)
    checker.run()
    return checker.errors


class Checker(ExprChecker):
    """Declarations first (streams, LETs, DEFAULTS), then each rule and its action."""

    def __init__(self, tree: nodes.Strategy, path: str) -> None:
        super().__init__(tree, path)
        self.defaults: dict[str, nodes.DefaultClause] = {}

    def run(self) -> None:
        # 1. Names: streams and LETs, so that any rule can use any of them.
        self.streams()
        self.let_names()
        # 2. LET bodies, dependencies first, so that each use knows the LET's type; those in a
        #    cycle last (their own mistakes are still worth reporting).
        order = self.let_order()
        for name in order + [name for name in self.lets if name in self.cyclic]:
            self.let_body(self.lets[name])
        # 3. DEFAULTS, once (their mistakes are not repeated for every action).
        self.defaults = self.default_clauses()
        # 4. Rules.
        for rule in self.tree.rules:
            if isinstance(rule, nodes.ForEach):
                self.for_each(rule)
            else:
                self.rule(rule, Context(Where.CONDITION))

    # -- declarations

    def streams(self) -> None:
        for stream in self.tree.streams:
            first = self.aliases.get(stream.alias)
            if first is not None:
                self.error(
                    stream.span,
                    f"duplicate alias '{stream.alias}' (first declared at line {first.span.line})",
                )
                continue
            self.aliases[stream.alias] = stream
            try:
                Timeframe.parse(stream.timeframe)
            except TimeframeError as error:
                self.error(stream.timeframe_span, str(error))

    def let_names(self) -> None:
        for let in self.tree.lets:
            first = self.lets.get(let.name)
            if first is not None:
                self.error(
                    let.span,
                    f"duplicate LET '{let.name}' (first declared at line {first.span.line})",
                )
            elif let.name in self.aliases:
                self.error(let.span, f"LET '{let.name}' has the name of a stream alias")
            else:
                self.lets[let.name] = let

    def let_order(self) -> list[str]:
        """LET names, each after the LETs it uses; LETs in a cycle are reported and left out."""
        deps = {name: _uses(let.expr, self.lets) for name, let in self.lets.items()}
        order: list[str] = []
        state: dict[str, str] = {}  # "active" while on the DFS path, then "done"
        for root in self.lets:
            if root in state:
                continue
            path = [root]
            stack = [iter(deps[root])]
            state[root] = "active"
            while stack:
                child = next(stack[-1], None)
                if child is None:
                    stack.pop()
                    done = path.pop()
                    state[done] = "done"
                    order.append(done)
                elif state.get(child) == "active":
                    self.cycle(path[path.index(child) :] + [child])
                elif child not in state:
                    state[child] = "active"
                    path.append(child)
                    stack.append(iter(deps[child]))
        return [name for name in order if name not in self.cyclic]

    def cycle(self, names: list[str]) -> None:
        members = set(names)
        if not members & self.cyclic:
            first = min(
                (self.lets[name] for name in members), key=lambda let: (let.span.line, let.span.col)
            )
            start = names.index(first.name)
            loop = names[start:-1] + names[:start] + [first.name]
            if len(loop) > 10:  # a readable message, however long the cycle
                loop = [*loop[:8], f"... ({len(loop) - 1} LETs)", first.name]
            self.error(first.span, f"LET cycle: {' -> '.join(loop)}")
        self.cyclic |= members

    def let_body(self, let: nodes.Let) -> None:
        self.found_condition_only = None
        self.let_types[let.name] = self.expr(let.expr, Context(Where.LET))
        if self.found_condition_only:
            self.let_condition_only[let.name] = self.found_condition_only
        self.found_condition_only = None

    def default_clauses(self) -> dict[str, nodes.DefaultClause]:
        seen: dict[str, nodes.DefaultClause] = {}
        for clause in self.tree.defaults:
            first = seen.get(clause.name)
            if first is not None:
                self.error(
                    clause.span,
                    f"{clause.name} is already set in DEFAULTS (line {first.span.line})",
                )
                continue
            seen[clause.name] = clause
            value = clause.value
            if clause.name == "TRAILING" and not isinstance(value, nodes.Trailing):
                self.error(value.span, "DEFAULTS TRAILING must be TRAILING BY x or TRAILING PCT f")
            elif clause.name == "STOP_LOSS" and isinstance(value, nodes.Exit):
                self.exit_level("STOP_LOSS", value, _DEFAULTS)
            else:
                self.part(value, _DEFAULTS)
        return seen

    # -- rules

    def for_each(self, loop: nodes.ForEach) -> None:
        if loop.var in self.aliases:
            self.error(loop.var_span, f"loop variable '{loop.var}' has the name of a stream alias")
        elif loop.var in self.lets:
            self.error(loop.var_span, f"loop variable '{loop.var}' has the name of a LET")
        seen: set[str] = set()
        for alias in loop.aliases:
            if alias.name in seen:
                self.error(alias.span, f"'{alias.name}' is listed twice")
            elif alias.name not in self.broken:
                self.alias(alias.name, alias.span, Context(Where.CONDITION))
            seen.add(alias.name)
        if loop.var:
            self.rule(loop.rule, Context(Where.CONDITION, loop.var, loop.broken))

    def rule(self, rule: nodes.Rule, ctx: Context) -> None:
        got = self.expr(rule.condition, ctx)
        if got is Type.NUMBER:
            self.error(
                rule.condition.span, "a rule's condition must be true or false, got a number"
            )
        self.action(rule.action, Context(Where.ACTION, ctx.loop_var, ctx.loop_broken), rule)

    def action(self, action: nodes.Action, ctx: Context, rule: nodes.Rule) -> None:
        match action:
            case nodes.Order():
                self.order(action, ctx, complete=not rule.truncated)
            case nodes.Close():
                self.alias(action.alias, action.alias_span, ctx)
            case nodes.Cancel():
                self.error(action.span, "CANCEL is not yet supported")
            case nodes.CancelAll():
                self.error(action.span, "CANCEL_ALL is not yet supported")
            case nodes.CloseAll() | nodes.Log():
                if not self.tree.streams and not self.broken:
                    self.error(
                        action.span, "a rule needs a stream to run on: declare one in SYMBOLS"
                    )

    def order(self, order: nodes.Order, ctx: Context, complete: bool) -> None:
        self.alias(order.alias, order.alias_span, ctx)
        options: dict[type, nodes.Option] = {}
        for option in order.options:
            key = type(option)
            if key in options:
                self.error(option.span, f"{_option_word(option)} is given twice")
                continue
            options[key] = option
            self.option(option, ctx)
        bracket = options.get(nodes.BracketOpt)
        oco = options.get(nodes.OcoOpt)
        if oco is not None and bracket is not None:
            self.error(oco.span, "OCO cannot be combined with BRACKET")
        if oco is not None and nodes.OrderTypeOpt in options:
            self.error(oco.span, "OCO places its own stop and limit orders: drop ORDER_TYPE")
        if self.tree.defaults_broken or not complete:
            return  # what DEFAULTS (or a misspelt option) would have supplied is unknown
        # What DEFAULTS fill in (an OCO is an exit, not an entry: no bracket for it).
        sizing = options.get(nodes.SizingOpt)
        default_sizing = self.defaults.get("SIZING")
        if sizing is None and default_sizing is None:
            self.error(
                order.span, f"{order.side} {order.alias} needs a SIZING (here or in DEFAULTS)"
            )
        children = (
            {child.which: child.exit for child in bracket.children}
            if isinstance(bracket, nodes.BracketOpt)
            else {}
        )
        stop, take = children.get("STOP_LOSS"), children.get("TAKE_PROFIT")
        if oco is None:
            stop = stop or self.default_exit("STOP_LOSS")
            take = take or self.default_exit("TAKE_PROFIT")
        if take is not None and take.kind == "RR" and stop is None:
            where = take.span if "TAKE_PROFIT" in children else order.span
            self.error(where, "TAKE PROFIT RR needs a STOP LOSS (RR is a multiple of its distance)")
        risk = sizing.sizing if isinstance(sizing, nodes.SizingOpt) else None
        if risk is None and default_sizing is not None:
            risk = (
                default_sizing.value if isinstance(default_sizing.value, nodes.SizeRisk) else None
            )
        if isinstance(risk, nodes.SizeRisk) and (stop is None or stop.kind != "BY"):
            where = risk.span if sizing is not None else order.span
            origin = "" if sizing is not None else " (from DEFAULTS)"
            self.error(
                where, f"SIZING RISK{origin} needs a stop loss given BY a distance (STOP LOSS BY x)"
            )

    def default_exit(self, name: str) -> nodes.Exit | None:
        clause = self.defaults.get(name)
        return clause.value if clause and isinstance(clause.value, nodes.Exit) else None

    def option(self, option: nodes.Option, ctx: Context) -> None:
        match option:
            case nodes.SizingOpt():
                self.part(option.sizing, ctx)
            case nodes.OrderTypeOpt():
                self.part(option.order_type, ctx)
            case nodes.TifOpt():
                self.part(option.tif, ctx)
            case nodes.BracketOpt():
                seen: set[str] = set()
                for child in option.children:
                    if child.which in seen:
                        self.error(child.span, f"{_spoken(child.which)} is given twice in BRACKET")
                    seen.add(child.which)
                    self.exit_level(child.which, child.exit, ctx)
            case nodes.OcoOpt():
                seen = set()
                for leg in option.children:
                    if leg.which in seen:
                        self.error(leg.span, f"{leg.which} is given twice in OCO")
                    seen.add(leg.which)
                    self.want(leg.price, ctx, Type.NUMBER)

    def exit_level(self, which: str, level: nodes.Exit, ctx: Context) -> None:
        if which == "STOP_LOSS" and level.kind == "RR":
            self.error(level.span, "RR is only valid for TAKE PROFIT: a stop loss is AT, BY or PCT")
        self.want(level.value, ctx, Type.NUMBER)

    def part(
        self, value: nodes.Sizing | nodes.OrderType | nodes.Tif | nodes.Exit, ctx: Context
    ) -> None:
        """The expressions inside a sizing, order type, TIF or exit level: all numbers."""
        match value:
            case nodes.SizePos():
                self.alias(value.alias, value.alias_span, ctx)
            case nodes.SizeQty() | nodes.SizeUsd() | nodes.SizeRisk():
                self.want(value.amount, ctx, Type.NUMBER)
            case nodes.SizePct():
                self.want(value.fraction, ctx, Type.NUMBER)
            case nodes.Market():
                pass
            case nodes.Limit():
                self.want(value.price, ctx, Type.NUMBER)
            case nodes.Stop():
                self.want(value.stop, ctx, Type.NUMBER)
                if value.limit is not None:
                    self.want(value.limit, ctx, Type.NUMBER)
            case nodes.Trailing():
                self.want(value.amount, ctx, Type.NUMBER)
            case nodes.Tif():
                if value.kind == "GTD":
                    self.error(value.span, "TIF GTD is not yet supported")
            case nodes.Exit():
                self.exit_level("TAKE_PROFIT", value, ctx)


def _uses(expr: nodes.Expr, lets: dict[str, nodes.Let]) -> list[str]:
    """The LETs `expr` names (directly, or in a snapshot), in order of appearance."""
    found: list[str] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.Name | nodes.Snap) and node.name in lets:
            found.append(node.name)
        stack.extend(reversed(nodes.children(node)))
    return list(dict.fromkeys(found))


def _option_word(option: nodes.Option) -> str:
    match option:
        case nodes.SizingOpt():
            return "SIZING"
        case nodes.OrderTypeOpt():
            return "ORDER_TYPE"
        case nodes.TifOpt():
            return "TIF"
        case nodes.BracketOpt():
            return "BRACKET"
        case nodes.OcoOpt():
            return "OCO"


def _spoken(which: str) -> str:
    return which.replace("_", " ")
