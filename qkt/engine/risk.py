"""Measuring a strategy against its `RiskLimits`, and the daemon against its `PortfolioLimits`.

`RiskMonitor` keeps what the limits are measured from, and says when one is breached:
- daily loss = equity at 00:00 UTC - equity now (realized and unrealized change since the day
  began, by the engine's clock); breached when it reaches `max_daily_loss`;
- drawdown = (peak equity - equity) / peak * 100, the peak being the highest equity seen (the
  starting balance at first) while a daily-loss or drawdown limit is on; breached when it
  reaches `max_drawdown_pct`;
- position notional = |position after the order| * price; an order that would make it exceed
  `max_position_notional` is a breach (and is rejected);
- order rate = orders the strategy's rules placed in the last 60 s; the order that makes it
  exceed `max_orders_per_minute` is a breach;
- loss streak = closing fills in a row whose realized PnL (fee included) is below zero; breached
  when it reaches `max_loss_streak`.
`rearm` (on resume) measures afresh from now: the day's equity and the peak become the
current equity, the streak and the order count start at zero.

`evaluate_portfolio_limits` is the daemon-wide check, a pure function of every strategy's
equity now and at 00:00 UTC and of the summed equity's peak.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from qkt.engine.halt import HaltKind
from qkt.engine.limits import PortfolioLimits, RiskLimits
from qkt.log import iso_utc
from qkt.money import CONTEXT, ZERO, to_str

DAY_MS: Final = 86_400_000
MINUTE_MS: Final = 60_000
HUNDRED: Final = Decimal(100)
CENT: Final = Decimal("0.01")  # drawdowns are reported to a hundredth of a percent


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit reached: which, the figure, the limit, and when (epoch ms)."""

    kind: HaltKind
    value: Decimal
    limit: Decimal
    at_ms: int

    @property
    def reason(self) -> str:
        """One sentence: the limit, the value and the time."""
        what = _WHAT[self.kind].format(value=to_str(self.value))
        return f"{self.kind.value} {to_str(self.limit)} breached: {what} at {iso_utc(self.at_ms)}"


_WHAT: Final = {
    HaltKind.MAX_DAILY_LOSS: "lost {value} since 00:00 UTC",
    HaltKind.MAX_DRAWDOWN_PCT: "equity {value} % below its peak",
    HaltKind.MAX_POSITION_NOTIONAL: "an order for a position worth {value}",
    HaltKind.MAX_ORDERS_PER_MINUTE: "{value} orders in 60 s",
    HaltKind.MAX_LOSS_STREAK: "{value} losing trades in a row",
    HaltKind.PORTFOLIO_DAILY_LOSS: "every strategy together lost {value} since 00:00 UTC",
    HaltKind.PORTFOLIO_DRAWDOWN_PCT: "the summed equity is {value} % below its peak",
}


def utc_day(ms: int) -> int:
    """Days since the epoch, UTC."""
    return ms // DAY_MS


def drawdown_pct(peak: Decimal, equity: Decimal) -> Decimal:
    """How far `equity` is below `peak`, in percent of the peak (0 at or above it)."""
    if peak <= 0 or equity >= peak:
        return ZERO
    return CONTEXT.divide(CONTEXT.multiply(CONTEXT.subtract(peak, equity), HUNDRED), peak)


class RiskMonitor:
    """The figures one strategy's limits are measured from; see the module docstring."""

    def __init__(self, limits: RiskLimits, equity: Decimal) -> None:
        self.limits = limits
        self.day: int | None = None  # the UTC day `day_start_equity` belongs to
        self.day_start_equity = equity
        self.peak_equity = equity
        self.loss_streak = 0
        self._orders: deque[int] = deque()  # when the rules' recent orders were placed

    def is_new_day(self, now_ms: int) -> bool:
        """`now_ms` is in a later UTC day than the count's (or no day was counted yet)."""
        return self.day is None or utc_day(now_ms) > self.day

    def new_day(self, now_ms: int, equity: Decimal) -> bool:
        """Start a new UTC day's count if `now_ms` is in one; True if it is (the first call
        starts the first day)."""
        day = utc_day(now_ms)
        if self.day is not None and day <= self.day:
            return False
        fresh = self.day is not None
        self.day, self.day_start_equity = day, equity
        return fresh

    def daily_loss(self, equity: Decimal) -> Decimal:
        """What the day lost so far (negative: it made money)."""
        return CONTEXT.subtract(self.day_start_equity, equity)

    def on_equity(self, equity: Decimal, now_ms: int) -> list[Breach]:
        """Move the peak; the daily-loss and drawdown breaches at this equity (both are
        reported: a drawdown must take over a daily-loss halt that would lift at midnight)."""
        if equity > self.peak_equity:
            self.peak_equity = equity
        breaches: list[Breach] = []
        limit = self.limits.max_daily_loss
        loss = self.daily_loss(equity)
        if limit is not None and loss >= limit:
            breaches.append(Breach(HaltKind.MAX_DAILY_LOSS, loss, limit, now_ms))
        pct_limit = self.limits.max_drawdown_pct
        if pct_limit is not None:
            fall = drawdown_pct(self.peak_equity, equity)
            if fall >= pct_limit:
                shown = fall.quantize(CENT)
                breaches.append(Breach(HaltKind.MAX_DRAWDOWN_PCT, shown, pct_limit, now_ms))
        return breaches

    def on_closing_fill(self, realized: Decimal, now_ms: int) -> Breach | None:
        """Count a fill that reduced a position; the loss-streak breach, if any."""
        self.loss_streak = self.loss_streak + 1 if realized < 0 else 0
        limit = self.limits.max_loss_streak
        if limit is not None and self.loss_streak >= limit:
            streak = Decimal(self.loss_streak)
            return Breach(HaltKind.MAX_LOSS_STREAK, streak, Decimal(limit), now_ms)
        return None

    def on_order(self, now_ms: int) -> Breach | None:
        """Count an order a rule placed; the order-rate breach, if this one is one too many."""
        orders = self._orders
        orders.append(now_ms)
        while orders and orders[0] <= now_ms - MINUTE_MS:
            orders.popleft()
        limit = self.limits.max_orders_per_minute
        if limit is not None and len(orders) > limit:
            count = Decimal(len(orders))
            return Breach(HaltKind.MAX_ORDERS_PER_MINUTE, count, Decimal(limit), now_ms)
        return None

    def notional_breach(self, notional: Decimal, now_ms: int) -> Breach | None:
        """The position-notional breach of an order leaving a position worth `notional`."""
        limit = self.limits.max_position_notional
        if limit is not None and notional > limit:
            return Breach(HaltKind.MAX_POSITION_NOTIONAL, notional, limit, now_ms)
        return None

    def orders_in_last_minute(self, now_ms: int) -> int:
        """Orders the rules placed in the 60 s before `now_ms`."""
        return sum(1 for ms in self._orders if ms > now_ms - MINUTE_MS)

    def rearm(self, equity: Decimal) -> None:
        """Measure afresh from now (a resume): nothing breached is carried over."""
        self.day_start_equity = self.peak_equity = equity
        self.loss_streak = 0
        self._orders.clear()

    def export(self) -> dict[str, Any]:
        """As JSON-able data."""
        return {
            "day": self.day,
            "day_start_equity": str(self.day_start_equity),
            "peak_equity": str(self.peak_equity),
            "loss_streak": self.loss_streak,
            "orders": list(self._orders),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load what `export` returned."""
        self.day = None if data["day"] is None else int(data["day"])
        self.day_start_equity = Decimal(data["day_start_equity"])
        self.peak_equity = Decimal(data["peak_equity"])
        self.loss_streak = int(data["loss_streak"])
        self._orders = deque(int(ms) for ms in data["orders"])


# -- daemon-wide ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StrategyEquity:
    """One strategy's figures, as its worker reports them."""

    name: str
    equity: Decimal
    day_start_equity: Decimal  # its equity at 00:00 UTC (or at its last resume)


def evaluate_portfolio_limits(
    equities: Iterable[StrategyEquity],
    limits: PortfolioLimits,
    peak_equity: Decimal,
    now_ms: int,
) -> Breach | None:
    """The daemon-wide breach, if any: the sum of every strategy's daily loss reaching
    `max_daily_loss`, or the summed equity `max_drawdown_pct` below `peak_equity` (the caller
    keeps the peak: `max(peak, summed equity)` after each evaluation)."""
    total = day_start = ZERO
    for row in equities:
        total = CONTEXT.add(total, row.equity)
        day_start = CONTEXT.add(day_start, row.day_start_equity)
    loss = CONTEXT.subtract(day_start, total)
    if limits.max_daily_loss is not None and loss >= limits.max_daily_loss:
        return Breach(HaltKind.PORTFOLIO_DAILY_LOSS, loss, limits.max_daily_loss, now_ms)
    if limits.max_drawdown_pct is not None:
        fall = drawdown_pct(max(peak_equity, total), total)
        if fall >= limits.max_drawdown_pct:
            pct = fall.quantize(CENT)
            return Breach(HaltKind.PORTFOLIO_DRAWDOWN_PCT, pct, limits.max_drawdown_pct, now_ms)
    return None
