"""The risk options `qkt deploy` and `qkt backtest` share (docs/risk.md), declared once and
checked by the engine's own parsers before anything starts (one line naming the flag)."""

from __future__ import annotations

from typing import Annotated

import typer

RISK_PANEL = "Risk limits and buying power (docs/risk.md)"


def _option(flag: str, metavar: str, text: str) -> object:
    return typer.Option(
        flag, metavar=metavar, help=text, show_default=False, rich_help_panel=RISK_PANEL
    )


DailyLoss = Annotated[
    str | None, _option("--max-daily-loss", "MONEY", "Halt at this loss since 00:00 UTC (off).")
]
DrawdownPct = Annotated[
    str | None, _option("--max-drawdown-pct", "P", "Halt P % below the peak equity (off).")
]
PositionNotional = Annotated[
    str | None,
    _option("--max-position-notional", "MONEY", "Reject an order for a bigger position (off)."),
]
OrdersPerMinute = Annotated[
    str | None, _option("--max-orders-per-minute", "N", "Halt past N orders in 60 s (60).")
]
LossStreak = Annotated[
    str | None, _option("--max-loss-streak", "N", "Halt after N losing trades in a row (off).")
]
Leverage = Annotated[
    str | None, _option("--leverage", "N", "Linear perpetuals: leverage, 1 to 100 (1).")
]
Margin = Annotated[
    str | None, _option("--margin", "on|off", "off: fill whatever the balance (qkt 0.13).")
]


def limit_values(
    max_daily_loss: str | None,
    max_drawdown_pct: str | None,
    max_position_notional: str | None,
    max_orders_per_minute: str | None,
    max_loss_streak: str | None,
) -> dict[str, str]:
    """The limits given, by name, checked (RiskLimitError naming the flag)."""
    given = {
        "max_daily_loss": max_daily_loss,
        "max_drawdown_pct": max_drawdown_pct,
        "max_position_notional": max_position_notional,
        "max_orders_per_minute": max_orders_per_minute,
        "max_loss_streak": max_loss_streak,
    }
    from qkt.engine import limits_from_flags  # only once a command runs: `--help` stays light

    chosen = {name: value.strip().lower() for name, value in given.items() if value is not None}
    limits_from_flags(chosen)
    return chosen


def margin_value(leverage: str | None, margin: str | None) -> bool | None:
    """`--margin` as a bool (None: not given), `--leverage` checked."""
    from qkt.engine import parse_leverage, parse_margin

    if leverage is not None:
        parse_leverage(leverage)  # the API says the same, but only once a daemon answers
    return None if margin is None else parse_margin(margin)
