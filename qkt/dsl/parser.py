"""Tokens -> syntax tree: the header, the sections and the rules (recursive descent).

One method per grammar rule of dsl.md; actions are in `actions.py`, expressions in
`expressions.py`. After a syntax error the parser resynchronises at `DEFAULTS SYMBOLS LET RULES
WHEN FOR` (or at the next item of a list or DEFAULTS clause), so one pass reports every mistake,
and one mistake gives one error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final, Literal, cast

from qkt.dsl import nodes
from qkt.dsl.actions import ActionParser
from qkt.dsl.cursor import Recover, span
from qkt.dsl.errors import DslError
from qkt.dsl.expressions import MAX_COUNT
from qkt.dsl.tokens import SECTION_WORDS, SYNC_WORDS, Token, TokenKind

_CLAUSES: Final = ("SIZING", "STOP_LOSS", "TAKE_PROFIT", "TIF", "ORDER_TYPE", "TRAILING")

ClauseName = Literal["SIZING", "STOP_LOSS", "TAKE_PROFIT", "TIF", "ORDER_TYPE", "TRAILING"]


def parse(tokens: list[Token], path: str) -> tuple[nodes.Strategy, list[DslError]]:
    """The syntax tree of a token list (as complete as the mistakes allow) and every error."""
    parser = Parser(tokens, path)
    return parser.strategy(), parser.errors


def _adjacent(first: Token, second: Token) -> bool:
    return first.line == second.line and first.col + len(first.text) == second.col


class Parser(ActionParser):
    """`strategy := STRATEGY IDENT VERSION INT [defaults] [symbols] [lets] [rules] EOF`."""

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

    def strategy(self) -> nodes.Strategy:
        # 1. The header.
        try:
            self.header()
        except Recover:
            self.sync()
        # 2. The sections. One out of order was reported where the previous section ended;
        #    parse it anyway, so that its names are declared and its own mistakes found.
        while self.tok.kind is not TokenKind.EOF:
            start = self.pos
            try:
                self.section()
            except Recover:
                self.sync()
            if self.pos == start:  # a guarantee against hangs: every turn consumes a token
                self.advance()
        return nodes.Strategy(
            name=self.name,
            version=self.version,
            defaults=tuple(self.defaults),
            streams=tuple(self.streams),
            lets=tuple(self.lets),
            rules=tuple(self.rules),
            broken=frozenset(self.broken),
            defaults_broken=self.defaults_broken,
            warmup=self.warmup,
        )

    def header(self) -> None:
        self.expect("STRATEGY")
        self.name = self.expect_name("a strategy name after STRATEGY").text
        self.expect("VERSION", "VERSION after the strategy name")
        tok = self.tok
        if tok.kind is not TokenKind.NUMBER or not tok.text.isdigit():
            raise self.fail("a whole number after VERSION")
        self.advance()
        if len(tok.text) > 9:
            self.report(tok, f"VERSION {tok.text} is too large")
        else:
            self.version = int(tok.text)
        self.warmup_clause()
        self.end_section(-1, "DEFAULTS, SYMBOLS, LET or RULES")

    def warmup_clause(self) -> None:
        """`WARMUP n` after the header: at least n candles of history per key (0.13 files, which
        lack it, are unchanged; `warmup` stays an ordinary name elsewhere)."""
        tok = self.tok
        if tok.kind is not TokenKind.IDENT or tok.text.upper() != "WARMUP":
            return
        self.advance()
        count = self.tok
        if count.kind is not TokenKind.NUMBER or not count.text.isdigit():
            raise self.fail("a whole number of candles after WARMUP")
        self.advance()
        if len(count.text) > 6 or not 1 <= int(count.text) <= MAX_COUNT:
            self.report(count, f"WARMUP must be from 1 to {MAX_COUNT} candles")
        else:
            self.warmup = int(count.text)

    def section(self) -> None:
        if self.at("DEFAULTS"):
            self.defaults_section()
        elif self.at("SYMBOLS"):
            self.symbols_section()
        elif self.at("LET"):
            self.lets_section()
        elif self.accept("RULES") or self.at("WHEN", "FOR"):
            # A missing RULES header was reported where the previous section ended.
            self.rules_section()
        else:
            raise self.fail("DEFAULTS, SYMBOLS, LET or RULES")

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
            if unit.kind not in (TokenKind.IDENT, TokenKind.KEYWORD) or not _adjacent(count, unit):
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
            if rest.kind in (TokenKind.IDENT, TokenKind.KEYWORD) and _adjacent(tok, rest):
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

    # -- RULES

    def rules_section(self) -> None:
        end = -1  # where the last rule ended
        while self.tok.kind is not TokenKind.EOF:
            try:
                if self.at("WHEN"):
                    self.rules.append(self.rule())
                    end = self.pos
                elif self.at("FOR"):
                    self.rules.append(self.for_each())
                    end = self.pos
                else:
                    if end == self.pos:
                        self.truncate_last_rule()
                    raise self.fail("WHEN or FOR EACH in RULES")
            except Recover:
                self.sync()
                if self.at(*SECTION_WORDS):
                    return

    def truncate_last_rule(self) -> None:
        """Junk right after an action is likely a misspelt option (`SIZNG 1`): mark the rule, so
        that the checker does not also report the option as missing."""
        last = self.rules[-1]
        if isinstance(last, nodes.ForEach):
            self.rules[-1] = replace(last, rule=replace(last.rule, truncated=True))
        else:
            self.rules[-1] = replace(last, truncated=True)

    def rule(self) -> nodes.Rule:
        start = self.pos
        when = self.expect("WHEN")
        condition = self.top_expr()
        if self.at("="):
            self.report(self.tok, "expected THEN, got '=' (compare with ==)")
            raise Recover()
        self.expect("THEN")
        action = self.action()
        return nodes.Rule(span(when), condition, action, self.source_text(start))

    def for_each(self) -> nodes.ForEach:
        start = self.pos
        head = self.expect("FOR")
        var: Token | None = None
        aliases: list[nodes.AliasRef] = []
        broken = False
        try:
            self.expect("EACH", "EACH after FOR")
            var = self.expect_name("a loop variable after FOR EACH")
            self.expect("IN", f"IN after FOR EACH {var.text}")
            self.expect("[", "'[' after IN")
            while True:
                alias = self.expect_ident("a stream alias in the FOR EACH list")
                aliases.append(nodes.AliasRef(span(alias), alias.text))
                if self.accept("]"):
                    break
                self.expect(",", "',' or ']'")
            self.expect("DO", "DO after the FOR EACH list")
        except Recover:
            # Parse the rule after DO anyway: its own mistakes are worth reporting too.
            broken = True
            self.sync(lambda tok, depth, cases: tok.is_("DO"))
            if not self.accept("DO"):
                raise
            self.open = 0
        rule = self.rule()
        return nodes.ForEach(
            span=span(head),
            var=var.text if var else "",
            var_span=span(var or head),
            aliases=tuple(aliases),
            rule=rule,
            text=self.source_text(start),
            broken=broken,
        )

    def source_text(self, start: int) -> str:
        """The tokens from `start` up to here as written, any gap (space, comment) as one space."""
        parts: list[str] = []
        previous: Token | None = None
        for tok in self.tokens[start : self.pos]:
            if previous is not None and not _adjacent(previous, tok):
                parts.append(" ")
            parts.append(tok.text)
            previous = tok
        return "".join(parts)
