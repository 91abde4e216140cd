"""What the checker knows while it looks at an expression: declared names and the context."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from qkt.dsl import nodes

FIELDS: Final = ("open", "high", "low", "close", "volume", "price")
MAX_SUGGEST_FROM: Final = 200
ACCOUNT_FIELDS: Final = ("equity", "balance", "realized_pnl", "unrealized_pnl", "total_pnl")


class Type(Enum):
    """What an expression yields."""

    NUMBER = "a number"
    CONDITION = "a condition (true or false)"


class Where(Enum):
    """Where an expression is written: it decides what may appear in it."""

    CONDITION = "a rule's condition"
    ACTION = "an action"
    DEFAULTS = "DEFAULTS"
    LET = "a LET"


@dataclass(frozen=True, slots=True)
class Context:
    """Where we are, and the FOR EACH variable in scope (if any)."""

    where: Where
    loop_var: str | None = None
    loop_broken: bool = False


def suggest(name: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a declared name is close to `name`, else ``."""
    # Case-blind, so that `BTC` finds `btc` (identifiers are case-sensitive: a common slip).
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    if name.lower() in by_lower:
        return f" (did you mean '{by_lower[name.lower()]}'?)"
    if len(by_lower) > MAX_SUGGEST_FROM:
        return ""  # fuzzy matching against thousands of names would make bad input slow
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


def resolve(expr: nodes.Expr, lets: dict[str, nodes.Let], cyclic: set[str]) -> nodes.Expr | None:
    """Follow a chain of LET names (`n` -> `m` -> `14`) to what it stands for.

    None if the chain ends at a name that is not a usable LET (unknown, broken or cyclic).
    """
    seen: set[str] = set()
    while isinstance(expr, nodes.Name):
        let = lets.get(expr.name)
        if let is None or expr.name in cyclic or expr.name in seen:
            return None
        seen.add(expr.name)
        expr = let.expr
    return expr
