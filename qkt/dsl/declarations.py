"""The parser's state, and the sections that declare what the rules use: DEFAULTS, SYMBOLS
and LET.

Its own module, a layer of the parser as `ActionParser` is: parser.py keeps the header, the
order of the sections and RULES. The helpers every section uses (`end_section`,
`expect_name`, `missing_comma`) are here, with the state (`__init__`) that all of them fill.
"""

from __future__ import annotations

from typing import Final, Literal, cast

from qkt.dsl import nodes
from qkt.dsl.actions import ActionParser
from qkt.dsl.cursor import Recover, adjacent, span
from qkt.dsl.tokens import SECTION_WORDS, SYNC_WORDS, Token, TokenKind

_CLAUSES: Final = ("SIZING", "STOP_LOSS", "TAKE_PROFIT", "TIF", "ORDER_TYPE", "TRAILING")

ClauseName = Literal["SIZING", "STOP_LOSS", "TAKE_PROFIT", "TIF", "ORDER_TYPE", "TRAILING"]


class DeclarationParser(ActionParser):
    """What a parse builds (the parts of `nodes.Strategy`), and DEFAULTS, SYMBOLS and LET."""

    def __init__(self, tokens: list[Token], path: str) -> None:
        super().__init__(tokens, path)
        self.name = ""
        self.version = 0
        self.defaults: list[nodes.DefaultClause] = []
        self.streams: list[nodes.Stream] = []
        self.lets: list[nodes.Let] = []
        self.rules: list[nodes.Rule | nodes.ForEach] = []
        self.broken: set[str] = set()
        self.defaults_broken = False
        self.warmup: int | None = None

    def end_section(self, index: int, expected: str) -> None:
        """After section `index` (of DEFAULTS SYMBOLS LET RULES) comes a later one, or the end."""
        tok = self.tok
        if tok.kind is TokenKind.EOF:
            return
        if tok.kind is TokenKind.KEYWORD and tok.word in SECTION_WORDS:
            if SECTION_WORDS.index(tok.word) > index:
                return
        raise self.fail(expected)

    def expect_name(self, what: str) -> Token:
        """An identifier being declared; a keyword there gets a hint that it is reserved."""
        tok = self.tok
        if tok.kind is TokenKind.KEYWORD and tok.word not in SYNC_WORDS:
            self.report(tok, f"expected {what}, got '{tok.text}' (a reserved keyword)")
            raise Recover()
        return self.expect_ident(what)

    def missing_comma(self, expected: str) -> bool:
        """`a = 1 b = 2`: report the missing comma and go on as if it were there."""
        if self.tok.kind is TokenKind.IDENT and self.peek().is_("="):
            self.report(self.tok, f"expected {expected}, got {self.tok.describe()}")
            return True
        return False

    # -- DEFAULTS

    def defaults_section(self) -> None:
        try:
            self.expect("DEFAULTS")
            self.open = 0
            self.expect("{", "'{' after DEFAULTS")
            while not self.at("}"):
                tok = self.tok
                if tok.kind is TokenKind.EOF or (
                    tok.kind is TokenKind.KEYWORD and tok.word in SYNC_WORDS
                ):
                    raise self.fail("'}' to close DEFAULTS")
                try:
                    self.defaults.append(self.clause())
                except Recover:
                    self.defaults_broken = True
                    self.sync(self.at_clause)
                    self.open = 1  # still inside DEFAULTS' braces
            self.advance()
        except Recover:
            self.defaults_broken = True
            raise
        self.end_section(0, "SYMBOLS, LET or RULES after DEFAULTS")

    def at_clause(self, tok: Token, depth: int, cases: int) -> bool:
        """Where DEFAULTS resumes after a bad clause: its `}` or the next `NAME =`."""
        if depth > 1:
            return False
        return tok.is_("}") or (
            tok.kind is TokenKind.KEYWORD and tok.word in _CLAUSES and self.peek().is_("=")
        )

    def clause(self) -> nodes.DefaultClause:
        tok = self.tok
        if tok.kind is not TokenKind.KEYWORD or tok.word not in _CLAUSES:
            raise self.fail(
                "SIZING, STOP_LOSS, TAKE_PROFIT, TIF, ORDER_TYPE, TRAILING or '}' in DEFAULTS"
            )
        self.advance()
        name = cast(ClauseName, tok.word)
        self.expect("=", f"'=' after {name}")
        value: nodes.Sizing | nodes.Exit | nodes.Tif | nodes.OrderType
        if name == "SIZING":
            value = self.sizing()
        elif name in ("STOP_LOSS", "TAKE_PROFIT"):
            value = self.exit_level(f"AT, BY, PCT or RR after {name} =")
        elif name == "TIF":
            value = self.tif()
        else:
            value = self.order_type()
        return nodes.DefaultClause(span(tok), name, value)

    # -- SYMBOLS and LET

    def symbols_section(self) -> None:
        self.expect("SYMBOLS")
        self.open = 0
        while True:
            try:
                self.stream()
            except Recover:
                self.sync_item()
            if self.accept(",") or self.missing_comma("',' or LET/RULES"):
                continue
            self.end_section(1, "',' or LET/RULES")
            return

    def stream(self) -> None:
        alias = self.expect_name("a stream alias")
        try:
            self.expect("=", f"'=' after {alias.text}")
            broker = self.expect_ident("a broker name such as SIM or BYBIT")
            self.expect(":", "':' between broker and symbol")
            symbol = self.symbol()
            self.expect("EVERY", "EVERY after the symbol")
            count = self.tok
            if count.kind is not TokenKind.NUMBER:
                raise self.fail("a timeframe such as 1m or 4h after EVERY")
            self.advance()
            unit = self.tok
            if unit.kind not in (TokenKind.IDENT, TokenKind.KEYWORD) or not adjacent(count, unit):
                raise self.fail(f"a timeframe unit (s, m, h or d) right after {count.text}")
            self.advance()
        except Recover:
            self.broken.add(alias.text)
            raise
        timeframe = count.text + unit.text
        self.streams.append(
            nodes.Stream(span(alias), alias.text, broker.text, symbol, timeframe, span(count))
        )

    def symbol(self) -> str:
        """An exchange symbol; may start with digits (`1000PEPEUSDT`) or be a keyword (`SIM:ON`)."""
        tok = self.tok
        if tok.kind is TokenKind.NUMBER and tok.text.isdigit():
            self.advance()
            rest = self.tok
            if rest.kind in (TokenKind.IDENT, TokenKind.KEYWORD) and adjacent(tok, rest):
                self.advance()
                return tok.text + rest.text
            return tok.text
        if tok.kind is TokenKind.IDENT or (tok.kind is TokenKind.KEYWORD and tok.word != "EVERY"):
            self.advance()
            return tok.text
        raise self.fail("a symbol after ':'")

    def lets_section(self) -> None:
        self.expect("LET")
        self.open = 0
        while True:
            try:
                self.let()
            except Recover:
                self.sync_item()
            if self.accept(",") or self.missing_comma("',' or RULES"):
                continue
            self.end_section(2, "',' or RULES")
            return

    def let(self) -> None:
        name = self.expect_name("a LET name")
        try:
            self.expect("=", f"'=' after {name.text}")
            expr = self.top_expr()
        except Recover:
            self.broken.add(name.text)
            raise
        self.lets.append(nodes.Let(span(name), name.text, expr))
