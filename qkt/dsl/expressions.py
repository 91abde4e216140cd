"""Expressions: one method per rule of dsl.md's expression grammar, lowest precedence first."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Final, Literal, cast

from qkt.dsl import nodes
from qkt.dsl.cursor import Cursor, Recover, span
from qkt.dsl.nodes import Span
from qkt.dsl.tokens import Token, TokenKind, unquote

# Brackets, calls and CASEs nest by recursion: bound it so that no input can exhaust the stack.
MAX_NESTING: Final = 32
# Operator chains nest without recursion in the parser, but the checker and compiler walk trees.
MAX_DEPTH: Final = 64
# Periods, windows and lags beyond this are mistakes, and would make the engine keep huge buffers.
MAX_COUNT: Final = 100_000

_COMPARE: Final = (">", "<", ">=", "<=", "==", "!=")
_ACCESSORS: Final = ("ACCOUNT", "POSITION", "POSITION_AVG_PRICE", "OPEN_ORDERS")
_AGGREGATES: Final = ("MAX", "MIN", "MEAN", "SUM")

CompareOp = Literal[">", "<", ">=", "<=", "==", "!="]


def _adjacent_ident(first: Token, second: Token) -> bool:
    """`1d`: a number and a word written together."""
    return (
        second.kind is TokenKind.IDENT
        and first.line == second.line
        and first.col + len(first.text) == second.col
    )


class ExpressionParser(Cursor):
    """`expr := or`, down to `primary`; `top_expr` also bounds how deep the tree goes."""

    def __init__(self, tokens: list[Token], path: str) -> None:
        super().__init__(tokens, path)
        self.nesting = 0

    def top_expr(self) -> nodes.Expr:
        """A whole expression (a condition, a LET body, a price...)."""
        expr = self.expr()
        if nodes.depth(expr) > MAX_DEPTH:
            # Dropped like a syntax error: nothing downstream has to walk a tree this deep.
            self.report(expr.span, f"expression nested more than {MAX_DEPTH} levels deep")
            raise Recover()
        return expr

    def expr(self) -> nodes.Expr:
        if self.nesting >= MAX_NESTING:
            self.report(self.tok, f"expression nested more than {MAX_NESTING} brackets deep")
            raise Recover()
        self.nesting += 1
        try:
            return self.or_()
        finally:
            self.nesting -= 1

    def or_(self) -> nodes.Expr:
        left = self.and_()
        while op := self.accept("OR"):
            left = nodes.Binary(left.span, "OR", left, self.and_(), span(op))
        return left

    def and_(self) -> nodes.Expr:
        left = self.not_()
        while op := self.accept("AND"):
            left = nodes.Binary(left.span, "AND", left, self.not_(), span(op))
        return left

    def not_(self) -> nodes.Expr:
        # `NOT NOT x` loops instead of recursing: no input may exhaust the stack.
        nots = []
        while self.at("NOT"):
            nots.append(self.advance())
        expr = self.cmp()
        for tok in reversed(nots):
            expr = nodes.Unary(span(tok), "NOT", expr)
        return expr

    def cmp(self) -> nodes.Expr:
        left = self.add()
        while True:
            tok = self.tok
            if self.at(*_COMPARE):
                self.advance()
                op = cast(CompareOp, tok.text)
                left = nodes.Binary(left.span, op, left, self.add(), span(tok))
            elif self.accept("BETWEEN"):
                low = self.add()
                self.expect("AND", "AND in BETWEEN ... AND ...")
                left = nodes.Between(left.span, left, low, self.add())
            elif self.accept("IN"):
                left = nodes.InList(left.span, left, self.expr_list("[", "]"))
            elif self.accept("CROSSES"):
                direction = self.expect_one(("ABOVE", "BELOW"), "ABOVE or BELOW after CROSSES")
                which = cast(Literal["ABOVE", "BELOW"], direction.word)
                left = nodes.Crosses(left.span, which, left, self.add(), span(tok))
            else:
                return left

    def add(self) -> nodes.Expr:
        left = self.mul()
        while self.at("+", "-"):
            tok = self.advance()
            op = cast(Literal["+", "-"], tok.text)
            left = nodes.Binary(left.span, op, left, self.mul(), span(tok))
        return left

    def mul(self) -> nodes.Expr:
        left = self.unary()
        while self.at("*", "/"):
            tok = self.advance()
            op = cast(Literal["*", "/"], tok.text)
            left = nodes.Binary(left.span, op, left, self.unary(), span(tok))
        return left

    def unary(self) -> nodes.Expr:
        minuses = []
        while self.at("-"):
            minuses.append(self.advance())
        expr = self.primary()
        for tok in reversed(minuses):
            expr = nodes.Unary(span(tok), "-", expr)
        return expr

    def primary(self) -> nodes.Expr:
        tok = self.tok
        if tok.kind is TokenKind.NUMBER:
            self.advance()
            return nodes.Num(span(tok), Decimal(tok.text))
        if self.at("TRUE", "FALSE"):
            self.advance()
            return nodes.Bool(span(tok), tok.word == "TRUE")
        if self.accept("("):
            expr = self.expr()
            self.expect(")")
            return expr
        if self.at(*_AGGREGATES):
            return self.aggregate()
        if self.at("CASE"):
            return self.case()
        if self.at(*_ACCESSORS):
            return self.accessor()
        if self.accept("SYMBOL"):
            return nodes.SymbolRef(span(tok))
        if tok.kind is TokenKind.IDENT or self.at("OPEN", "CLOSE"):
            return self.named()
        if tok.kind is TokenKind.STRING:
            self.report(tok, f"a string is only allowed after LOG: {unquote(tok.text)!r}")
            raise Recover()
        raise self.fail("an expression")

    def named(self) -> nodes.Expr:
        """`NAME(args)`, `NAME.field`, `NAME@when` or a bare `NAME`."""
        tok = self.advance()
        where = span(tok)
        if self.at("("):
            args, keywords = self.call_args(tok.text)
            return self.output_field(nodes.Call(where, tok.text, args, keywords))
        if self.accept("."):
            field = self.expect_ident(f"a field name after '{tok.text}.'")
            return nodes.Field(where, tok.text, field.text, span(field))
        if self.accept("@"):
            return self.snapshot(tok.text, where)
        return nodes.Name(where, tok.text)

    def output_field(self, call: nodes.Call) -> nodes.Call:
        """`CALL(...).field`: one output of a multi-output indicator."""
        if not self.accept("."):
            return call
        field = self.expect_ident(f"an output name after {call.name}(...).")
        return replace(call, field=field.text, field_span=span(field))

    def call_args(self, name: str) -> tuple[tuple[nodes.Expr, ...], tuple[nodes.Keyword, ...]]:
        """`( [arg {, arg}] )` where an arg is an expression or `NAME=word` (`MATYPE=EMA`)."""
        self.expect("(")
        args: list[nodes.Expr] = []
        keywords: list[nodes.Keyword] = []
        if self.accept(")"):
            return (), ()
        while True:
            if self.tok.kind is TokenKind.IDENT and self.peek().is_("="):
                keywords.append(self.keyword(name))
            else:
                args.append(self.expr())
            if self.accept(")"):
                return tuple(args), tuple(keywords)
            self.expect(",", "',' or ')'")

    def keyword(self, call: str) -> nodes.Keyword:
        key = self.advance()
        self.advance()  # the `=`
        tok = self.tok
        if tok.kind is TokenKind.NUMBER and _adjacent_ident(tok, self.peek()):
            self.advance()
            unit = self.advance()
            return nodes.Keyword(span(key), key.text, tok.text + unit.text, span(tok))
        if tok.kind in (TokenKind.IDENT, TokenKind.KEYWORD) and tok.text[:1].isalpha():
            self.advance()
            return nodes.Keyword(span(key), key.text, tok.text, span(tok))
        raise self.fail(f"a word after {key.text}= in {call}(...), such as EMA")

    def snapshot(self, name: str, where: Span) -> nodes.Snap:
        tok = self.tok
        if self.at("BUY", "SELL", "OPEN"):
            self.advance()
            kind = cast(Literal["BUY", "SELL", "OPEN"], tok.word)
            return nodes.Snap(where, name, kind, 0, span(tok))
        if tok.kind is TokenKind.IDENT and tok.text.upper() == "T":
            lag, lag_span = self.back_count("@T")
            return nodes.Snap(where, name, "T", lag, lag_span)
        raise self.fail("BUY, SELL, OPEN or T-N after '@'")

    def back_count(self, what: str) -> tuple[int, Span]:
        """`T - INT` (the T is current): how many closes back."""
        self.advance()
        self.expect("-", f"'-' in {what}-N")
        tok = self.tok
        if tok.kind is not TokenKind.NUMBER or not tok.text.isdigit():
            raise self.fail(f"a whole number in {what}-N")
        self.advance()
        # Huge digit strings would take int() a long time; anything that long is out of range.
        return (int(tok.text) if len(tok.text) <= 9 else MAX_COUNT + 1), span(tok)

    def aggregate(self) -> nodes.Aggregate | nodes.Call:
        tok = self.advance()
        func = cast(Literal["MAX", "MIN", "MEAN", "SUM"], tok.word)
        if func in ("MAX", "MIN"):
            # MAX(a, b, ...) without SINCE is the math function; MAX(x) SINCE ... the aggregate.
            if not self.at("("):
                raise self.fail(f"'(' after {func}")
            args, _ = self.call_args(func)
            if not self.at("SINCE") or len(args) != 1:
                return nodes.Call(span(tok), func, args)
            operand = args[0]
        else:
            self.expect("(", f"'(' after {func}")
            operand = self.expr()
            self.expect(")", f"')' after {func}'s argument")
        self.expect("SINCE", f"SINCE after {func}(...)")
        window_tok = self.tok
        if self.accept("OPEN"):
            return nodes.Aggregate(span(tok), func, operand, None, span(window_tok))
        if window_tok.kind is TokenKind.IDENT and window_tok.text.upper() == "T":
            window, window_span = self.back_count("SINCE T")
            return nodes.Aggregate(span(tok), func, operand, window, window_span)
        raise self.fail("OPEN or T-N after SINCE")

    def case(self) -> nodes.Case:
        tok = self.advance()
        self.cases += 1
        branches = []
        self.expect("WHEN", "WHEN after CASE")
        while True:
            condition = self.expr()
            self.expect("THEN", "THEN in CASE")
            branches.append((condition, self.expr()))
            if self.accept("ELSE"):
                break
            self.expect("WHEN", "WHEN or ELSE in CASE")
        default = self.expr()
        self.expect("END", "END to close CASE")
        self.cases -= 1
        return nodes.Case(span(tok), tuple(branches), default)

    def accessor(self) -> nodes.Accessor:
        tok = self.advance()
        kind = cast(Literal["ACCOUNT", "POSITION", "POSITION_AVG_PRICE", "OPEN_ORDERS"], tok.word)
        self.expect(".", f"'.' after {kind}")
        name = self.expect_ident(f"a name after {kind}.")
        return nodes.Accessor(span(tok), kind, name.text, span(name))

    def expr_list(self, opener: str, closer: str) -> tuple[nodes.Expr, ...]:
        """`( [expr {, expr}] )` or the same in square brackets."""
        self.expect(opener)
        items: list[nodes.Expr] = []
        if self.accept(closer):
            return ()
        while True:
            items.append(self.expr())
            if self.accept(closer):
                return tuple(items)
            self.expect(",", f"',' or '{closer}'")
