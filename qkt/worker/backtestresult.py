"""`BacktestResult` and `BacktestSummary`: what a backtest hands back, and their JSON (spec.md's
`qkt backtest --json` object, money as exact decimal strings).

Kept apart from the replay that makes them (`qkt.worker.backtest`), so that what only reads a
finished run (the text and HTML reports) does not import the replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from qkt.engine import Fill, OrderRejectedEvent, RiskEvent
from qkt.money import to_str
from qkt.worker.figures import EquityCurve, Figures, Gap

PCT_STEP: Final = Decimal("0.00000001")
MAX_REJECTIONS_LISTED: Final = 100  # the JSON lists the first ones; `rejected` counts them all


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    """The figures of a run; docs/backtest.md defines each."""

    trades: int
    start_balance: Decimal
    realized: Decimal
    unrealized: Decimal
    total_pnl: Decimal
    equity: Decimal
    fees: Decimal
    first_ms: int | None  # open of the first candle
    last_ms: int | None  # close of the last candle
    figures: Figures
    gaps: tuple[Gap, ...]
    # docs/risk.md: halts, resumes and midnight lifts, and the orders refused (halted, a
    # limit, or no buying power), in the order they happened.
    risk_events: tuple[RiskEvent, ...] = ()
    rejections: tuple[OrderRejectedEvent, ...] = ()

    @property
    def max_drawdown(self) -> Decimal:
        """The largest fall of equity below its running peak, in money."""
        return self.figures.max_drawdown

    @property
    def max_drawdown_pct(self) -> Decimal:
        """That fall as a fraction (0..1) of the peak it fell from (the old name; not x100)."""
        return self.figures.max_drawdown_fraction

    @property
    def win_rate(self) -> float | None:
        """Closing fills with realized PnL above zero, over closing fills."""
        return self.figures.win_rate

    @property
    def sharpe(self) -> float | None:
        """Annualised Sharpe ratio of daily returns (None on a wiped-out account)."""
        return self.figures.sharpe

    def to_json(self) -> dict[str, Any]:
        """spec.md's summary object (money as exact decimal strings), plus the other figures."""
        f = self.figures
        fraction = to_str(f.max_drawdown_fraction.quantize(PCT_STEP))
        return {
            "trades": self.trades,
            "realized": to_str(self.realized),
            "unrealized": to_str(self.unrealized),
            "total_pnl": to_str(self.total_pnl),
            "equity": to_str(self.equity),
            "max_drawdown": to_str(f.max_drawdown),
            "win_rate": f.win_rate,
            "sharpe": f.sharpe,
            "start_balance": to_str(self.start_balance),
            "fees": to_str(self.fees),
            "max_drawdown_fraction": fraction,
            "max_drawdown_pct": fraction,  # the old name of the same fraction, kept for readers
            "longest_drawdown_ms": f.longest_drawdown_ms,
            "wiped_out": f.wiped_out_ms is not None,
            "wiped_out_ts": f.wiped_out_ms,
            "total_return": f.total_return,
            "cagr": f.cagr,
            "sortino": f.sortino,
            "calmar": f.calmar,
            "profit_factor": f.profit_factor,
            "expectancy": _opt(f.expectancy),
            "avg_win": _opt(f.avg_win),
            "avg_loss": _opt(f.avg_loss),
            "exposure": f.exposure,
            "trades_per_day": f.trades_per_day,
            "buy_and_hold_return": f.buy_and_hold_return,
            "first_ts": self.first_ms,
            "last_ts": self.last_ms,
            "gaps": [
                {"symbol": g.symbol, "after_ts": g.after_ms, "missing": g.missing}
                for g in self.gaps
            ],
            "undefined": dict(sorted(f.undefined.items())),
            "halts": [event.to_json() for event in self.risk_events],
            "rejected": len(self.rejections),
            "rejections": [
                {"ts": r.ts, "reason": r.reason, "symbol": r.order.instrument.symbol}
                for r in self.rejections[:MAX_REJECTIONS_LISTED]
            ],
        }


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What `qkt backtest` reports (the curve feeds `--report`)."""

    strategy: str
    version: int
    candles: int
    fills: tuple[Fill, ...]
    summary: BacktestSummary
    curve: EquityCurve

    def to_json(self) -> dict[str, Any]:
        """spec.md's `qkt backtest --json` object."""
        return {
            "strategy": self.strategy,
            "version": self.version,
            "candles": self.candles,
            "trades": [trade_json(fill) for fill in self.fills],
            "summary": self.summary.to_json(),
        }


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else to_str(value)


def trade_json(fill: Fill) -> dict[str, Any]:
    """spec.md's trade fields: `ts side symbol qty price fee realized`."""
    return {
        "ts": fill.ts,
        "side": fill.side.value,
        "symbol": fill.instrument.symbol,
        "qty": to_str(fill.qty),
        "price": to_str(fill.price),
        "fee": to_str(fill.fee),
        "realized": to_str(fill.realized),
    }
