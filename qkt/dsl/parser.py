"""Tokens -> syntax tree: the header, the sections and the rules (recursive descent).

One method per grammar rule of dsl.md; DEFAULTS, SYMBOLS and LET (and the parser's state) are
in `declarations.py`, actions in `actions.py`, expressions in `expressions.py`. After a syntax
error the parser resynchronises at `DEFAULTS SYMBOLS LET RULES WHEN FOR` (or at the next item
of a list or DEFAULTS clause), so one pass reports every mistake, and one mistake gives one
error.
"""

from __future__ import annotations

from dataclasses import replace

from qkt.dsl import nodes
from qkt.dsl.cursor import Recover, adjacent, span
from qkt.dsl.declarations import DeclarationParser
from qkt.dsl.errors import DslError
from qkt.dsl.expressions import MAX_COUNT
from qkt.dsl.tokens import SECTION_WORDS, Token, TokenKind


def parse(tokens: list[Token], path: str) -> tuple[nodes.Strategy, list[DslError]]:
    """The syntax tree of a token list (as complete as the mistakes allow) and every error."""
    parser = Parser(tokens, path)
    return parser.strategy(), parser.errors


class Parser(DeclarationParser):
    """`strategy := STRATEGY IDENT VERSION INT [defaults] [symbols] [lets] [rules] EOF`."""

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
            if previous is not None and not adjacent(previous, tok):
                parts.append(" ")
            parts.append(tok.text)
            previous = tok
        return "".join(parts)
