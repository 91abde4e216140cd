"""Actions and their options: `BUY btc SIZING ... ORDER_TYPE = ... TIF ... BRACKET {...}`.

Also the pieces DEFAULTS reuses: sizing, order type, TIF and exit levels.
"""

from __future__ import annotations

from typing import Final, Literal, cast

from qkt.dsl import nodes
from qkt.dsl.cursor import span
from qkt.dsl.expressions import ExpressionParser
from qkt.dsl.tokens import TokenKind, unquote

_TIFS: Final = ("GTC", "IOC", "FOK", "DAY")


class ActionParser(ExpressionParser):
    """`action := (BUY | SELL) IDENT { option } | CLOSE IDENT | CLOSE_ALL | ... | LOG STRING`."""

    def action(self) -> nodes.Action:
        tok = self.tok
        where = span(tok)
        if self.at("BUY", "SELL"):
            self.advance()
            side = cast(Literal["BUY", "SELL"], tok.word)
            alias = self.expect_ident(f"a stream alias after {side}")
            return nodes.Order(where, side, alias.text, span(alias), self.options())
        if self.at("CLOSE", "CANCEL"):
            self.advance()
            alias = self.expect_ident(f"a stream alias after {tok.word}")
            if tok.word == "CLOSE":
                return nodes.Close(where, alias.text, span(alias))
            return nodes.Cancel(where, alias.text, span(alias))
        if self.accept("CLOSE_ALL"):
            return nodes.CloseAll(where)
        if self.accept("CANCEL_ALL"):
            return nodes.CancelAll(where)
        if self.accept("LOG"):
            text = self.tok
            if text.kind is not TokenKind.STRING:
                raise self.fail("a 'quoted string' after LOG")
            self.advance()
            return nodes.Log(where, unquote(text.text))
        raise self.fail("action keyword")

    def options(self) -> tuple[nodes.Option, ...]:
        options: list[nodes.Option] = []
        while True:
            tok = self.tok
            where = span(tok)
            if self.accept("SIZING"):
                options.append(nodes.SizingOpt(where, self.sizing()))
            elif self.accept("ORDER_TYPE"):
                self.expect("=", "'=' after ORDER_TYPE")
                options.append(nodes.OrderTypeOpt(where, self.order_type()))
            elif self.accept("TIF"):
                options.append(nodes.TifOpt(where, self.tif()))
            elif self.accept("BRACKET"):
                options.append(nodes.BracketOpt(where, self.bracket()))
            elif self.accept("OCO"):
                options.append(nodes.OcoOpt(where, self.oco()))
            else:
                return tuple(options)

    def sizing(self) -> nodes.Sizing:
        tok = self.tok
        where = span(tok)
        if self.accept("RISK"):
            cash = self.accept("$") is not None
            return nodes.SizeRisk(where, self.top_expr(), cash)
        if self.at("POSITION") and self.peek().is_("."):
            self.advance()
            self.advance()
            alias = self.expect_ident("a stream alias after POSITION.")
            return nodes.SizePos(where, alias.text, span(alias))
        amount = self.top_expr()
        if self.accept("USD"):
            return nodes.SizeUsd(where, amount)
        if self.accept("%"):
            self.expect("OF", "OF after %")
            base = self.expect_one(("EQUITY", "BALANCE"), "EQUITY or BALANCE after % OF")
            return nodes.SizePct(where, amount, cast(Literal["EQUITY", "BALANCE"], base.word))
        return nodes.SizeQty(where, amount)

    def order_type(self) -> nodes.OrderType:
        tok = self.tok
        where = span(tok)
        if self.accept("MARKET"):
            return nodes.Market(where)
        if self.accept("LIMIT"):
            self.expect("AT", "AT after LIMIT")
            return nodes.Limit(where, self.top_expr())
        if self.accept("STOP"):
            self.expect("AT", "AT after STOP")
            stop = self.top_expr()
            limit = None
            if self.accept("LIMIT"):
                self.expect("AT", "AT after LIMIT")
                limit = self.top_expr()
            return nodes.Stop(where, stop, limit)
        if self.accept("TRAILING"):
            kind = self.expect_one(("BY", "PCT"), "BY or PCT after TRAILING")
            return nodes.Trailing(where, self.top_expr(), kind.word == "PCT")
        raise self.fail("MARKET, LIMIT AT, STOP AT or TRAILING")

    def tif(self) -> nodes.Tif:
        tok = self.tok
        if self.at(*_TIFS):
            self.advance()
            return nodes.Tif(span(tok), cast(Literal["GTC", "IOC", "FOK", "DAY"], tok.word), None)
        if self.accept("GTD"):
            return nodes.Tif(span(tok), "GTD", self.top_expr())
        raise self.fail("GTC, IOC, FOK, DAY or GTD after TIF")

    def exit_level(self, what: str) -> nodes.Exit:
        tok = self.expect_one(("AT", "BY", "PCT", "RR"), what)
        kind = cast(Literal["AT", "BY", "PCT", "RR"], tok.word)
        return nodes.Exit(span(tok), kind, self.top_expr())

    def bracket(self) -> tuple[nodes.BracketChild, ...]:
        self.expect("{", "'{' after BRACKET")
        children: list[nodes.BracketChild] = []
        while True:
            tok = self.tok
            if self.accept("STOP"):
                self.expect("LOSS", "LOSS after STOP")
                level = self.exit_level("AT, BY or PCT after STOP LOSS")
                children.append(nodes.BracketChild(span(tok), "STOP_LOSS", level))
            elif self.accept("TAKE"):
                self.expect("PROFIT", "PROFIT after TAKE")
                level = self.exit_level("AT, BY, PCT or RR after TAKE PROFIT")
                children.append(nodes.BracketChild(span(tok), "TAKE_PROFIT", level))
            else:
                raise self.fail("STOP LOSS or TAKE PROFIT in BRACKET")
            if self.accept("}"):
                return tuple(children)
            self.expect(",", "',' or '}'")

    def oco(self) -> tuple[nodes.OcoChild, ...]:
        self.expect("{", "'{' after OCO")
        children: list[nodes.OcoChild] = []
        while True:
            tok = self.expect_one(("STOP", "LIMIT"), "STOP AT or LIMIT AT in OCO")
            self.expect("AT", f"AT after {tok.word}")
            which = cast(Literal["STOP", "LIMIT"], tok.word)
            children.append(nodes.OcoChild(span(tok), which, self.top_expr()))
            if self.accept("}"):
                return tuple(children)
            self.expect(",", "',' or '}'")
