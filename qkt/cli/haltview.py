"""The halt and risk lines of `qkt status NAME` and the halt cells of `qkt list` (docs/risk.md).

A running worker's `/status` carries `risk` (its halt, limits and figures); the daemon's
record of a strategy without a process carries the `halt` it recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from qkt.cli.render import cell, iso_time, money

Line = tuple[str, list[str]]
_LIMIT_LABELS = (
    ("max_daily_loss", "daily loss"),
    ("max_drawdown_pct", "drawdown %"),
    ("max_position_notional", "position notional"),
    ("max_orders_per_minute", "orders/min"),
    ("max_loss_streak", "loss streak"),
)


class _FieldsView(Protocol):
    def get(self, key: str) -> Any: ...


def halt_text(halt: Mapping[str, Any]) -> str:
    """`max_daily_loss by risk since 2026-03-02T14:05:00Z: <reason>` (killed: said so)."""
    kind, by = halt.get("kind"), halt.get("by")
    since = iso_time(halt.get("since_ms"))
    killed = " (killed)" if halt.get("killed") else ""
    return f"{kind} by {by} since {since}{killed}: {halt.get('reason')}"


def risk_part(fields: _FieldsView) -> Iterator[Line]:
    """`halted` (who, what, when, why) and `risk` (limits and figures) lines."""
    risk = fields.get("risk")
    halt = risk.get("halt") if isinstance(risk, Mapping) else fields.get("halt")
    if isinstance(halt, Mapping):
        yield "halted", [halt_text(halt)]
    if not isinstance(risk, Mapping):
        return
    found = risk.get("limits")
    limits: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    shown = [
        f"{label} {cell(limits.get(key)) if limits.get(key) is not None else 'off'}"
        for key, label in _LIMIT_LABELS
    ]
    figures = [
        f"day's pnl {cell(money(risk.get('daily_pnl')))}",
        f"peak equity {cell(money(risk.get('peak_equity')))}",
        f"loss streak {cell(risk.get('loss_streak'))}",
        f"orders last minute {cell(risk.get('orders_last_minute'))}",
        f"available {cell(money(risk.get('available')))}",
        f"leverage {cell(risk.get('leverage'))}, margin {'on' if risk.get('margin') else 'off'}",
    ]
    halts = risk.get("halts")
    if isinstance(halts, Mapping) and halts:
        figures.append("halts " + ", ".join(f"{k} {v}" for k, v in sorted(halts.items())))
    if risk.get("rejected"):
        figures.append(f"rejected orders {cell(risk.get('rejected'))}")
    yield "limits", [", ".join(shown)]
    yield "risk", [", ".join(figures)]


def shown_state(state: str, halted: bool) -> str:
    """The STATE column: `halted` for a running strategy that makes no new entries."""
    return "halted" if halted and state == "running" else state
