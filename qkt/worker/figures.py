"""The figures of a backtest, computed from its equity curve and its fills (docs/backtest.md).

Money stays Decimal (PnL, fees, averages); ratios are floats. Conventions follow empyrical and
quantstats (daily returns, risk-free rate 0, sqrt(365) annualisation since crypto trades every
day) except where docs/backtest.md says otherwise. Once equity has reached zero or below, every
return-based figure is undefined: a ratio of returns on a wiped-out account means nothing, so
those figures are None and `undefined` says why.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from qkt.engine import Fill, Side
from qkt.log import iso_utc
from qkt.money import CONTEXT, ZERO

DAY_MS: Final = 86_400_000
YEAR_DAYS: Final = 365  # crypto trades every day of the year


@dataclass(slots=True)
class EquityCurve:
    """Equity after every instant of the run (all candles closing then applied), with whether a
    position was open and the buy-and-hold equity of the same symbols at that moment."""

    start_balance: Decimal
    start_ms: int = 0  # the open of the first candle
    times: list[int] = field(default_factory=list)
    equity: list[Decimal] = field(default_factory=list)
    exposed: list[bool] = field(default_factory=list)
    hold: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing candles in a symbol's finest stream: `missing` candles after `after_ms`."""

    symbol: str
    after_ms: int
    missing: int


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything docs/backtest.md defines, beyond the book's own totals."""

    max_drawdown: Decimal
    max_drawdown_fraction: Decimal
    longest_drawdown_ms: int
    wiped_out_ms: int | None
    total_return: float | None
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    win_rate: float | None
    profit_factor: float | None
    expectancy: Decimal | None
    avg_win: Decimal | None
    avg_loss: Decimal | None
    exposure: float | None
    trades_per_day: float | None
    buy_and_hold_return: float | None
    undefined: dict[str, str]


def compute(curve: EquityCurve, fills: Sequence[Fill]) -> Figures:
    """The figures of a finished run."""
    undefined: dict[str, str] = {}
    wiped = None
    if curve.equity and min(curve.equity) <= 0:  # min: a C loop; the scan only when it is due
        wiped = next((t for t, e in zip(curve.times, curve.equity, strict=True) if e <= 0), None)
    drawdown, fraction, longest = drawdowns(curve)
    span_ms = curve.times[-1] - curve.start_ms if curve.times else 0
    days = span_ms / DAY_MS
    returns = daily_returns(curve)
    start = curve.start_balance
    total = cagr = sharpe_ = sortino_ = calmar_ = None
    if wiped is not None:
        reason = f"the account was wiped out (equity <= 0) at {iso_utc(wiped)}"
        for name in ("total_return", "cagr", "sharpe", "sortino", "calmar"):
            undefined[name] = reason
    elif start <= 0:
        for name in ("total_return", "cagr", "sharpe", "sortino", "calmar"):
            undefined[name] = "the starting balance is not above zero"
    else:
        final = curve.equity[-1] if curve.equity else start
        total = float(final / start) - 1.0
        if days <= 0:
            undefined["cagr"] = "the run spans no time"
        else:
            try:
                cagr = (1.0 + total) ** (YEAR_DAYS / days) - 1.0
            except OverflowError:  # a short run compounded over a year: beyond any float
                undefined["cagr"] = "too large to annualise (the run is too short)"
        sharpe_ = sharpe(returns, undefined)
        sortino_ = sortino(returns, undefined)
        if cagr is None:
            undefined["calmar"] = undefined["cagr"]
        elif fraction == 0:
            undefined["calmar"] = "no drawdown"
        else:
            calmar_ = cagr / float(fraction)
    closing = [fill.realized for fill in fills if is_closing(fill)]
    wins = [pnl for pnl in closing if pnl > 0]
    losses = [pnl for pnl in closing if pnl <= 0]
    gross_loss = -sum(losses, ZERO)
    if not closing:
        undefined["win_rate"] = undefined["expectancy"] = "no position was reduced or closed"
    if gross_loss == 0:
        undefined["profit_factor"] = "no losing trade"
    return Figures(
        max_drawdown=drawdown,
        max_drawdown_fraction=fraction,
        longest_drawdown_ms=longest,
        wiped_out_ms=wiped,
        total_return=_round(total),
        cagr=_round(cagr),
        sharpe=_round(sharpe_),
        sortino=_round(sortino_),
        calmar=_round(calmar_),
        win_rate=_round(len(wins) / len(closing)) if closing else None,
        profit_factor=_round(float(sum(wins, ZERO) / gross_loss)) if gross_loss else None,
        expectancy=_mean(closing),
        avg_win=_mean(wins),
        avg_loss=_mean(losses),
        exposure=_round(sum(curve.exposed) / len(curve.exposed)) if curve.exposed else None,
        trades_per_day=_round(len(fills) / days) if days > 0 else None,
        buy_and_hold_return=_round(curve.hold[-1] - 1.0) if curve.hold else None,
        undefined=undefined,
    )


def drawdowns(curve: EquityCurve) -> tuple[Decimal, Decimal, int]:
    """(largest fall in money, largest fall as a fraction of its peak, capped at 1, longest
    time spent below a peak in ms). The starting balance is the first peak."""
    peak = curve.start_balance
    peak_ms = last_under = curve.start_ms
    worst = fraction = deepest = ZERO  # deepest: the largest fall below the current peak
    longest = 0
    under = False
    for ms, equity in zip(curve.times, curve.equity, strict=True):
        if equity < peak:
            last_under, under = ms, True
            fall = CONTEXT.subtract(peak, equity)
            if fall > deepest:  # only a deeper fall can move the figures
                deepest = fall
                if fall > worst:
                    worst = fall
                if peak > 0:  # under one peak the fraction grows with the fall
                    fraction = max(fraction, min(Decimal(1), CONTEXT.divide(fall, peak)))
        else:
            if under:  # recovered now: the drawdown lasted until this moment
                longest = max(longest, ms - peak_ms)
            peak, peak_ms, under, deepest = equity, ms, False, ZERO
    if under:  # still under water at the end: it lasted at least until the last instant
        longest = max(longest, last_under - peak_ms)
    return worst, fraction, longest


def daily_returns(curve: EquityCurve) -> list[float]:
    """A UTC day's return: its last equity over the previous day's (the first day's over the
    starting balance) minus 1; days are those that had candles."""
    closes: dict[int, Decimal] = {}
    times, index = curve.times, 0
    while index < len(times):  # a bisection per day, not a step per candle (times ascend)
        day = (times[index] - 1) // DAY_MS
        index = bisect.bisect_right(times, (day + 1) * DAY_MS, index)
        closes[day] = curve.equity[index - 1]  # the day's last: the last time <= its end
    returns: list[float] = []
    previous = curve.start_balance
    for day in sorted(closes):
        equity = closes[day]
        if previous <= 0:
            break
        returns.append(float(equity / previous) - 1.0)
        previous = equity
    return returns


def sharpe(returns: Sequence[float], undefined: dict[str, str]) -> float | None:
    """mean / sample standard deviation of daily returns * sqrt(365) (empyrical's sharpe_ratio)."""
    if len(returns) < 2:
        undefined["sharpe"] = "fewer than two days"
        return None
    deviation = statistics.stdev(returns)
    if deviation == 0:
        undefined["sharpe"] = "daily returns do not vary"
        return None
    return statistics.fmean(returns) / deviation * math.sqrt(YEAR_DAYS)


def sortino(returns: Sequence[float], undefined: dict[str, str]) -> float | None:
    """mean / downside deviation * sqrt(365); downside deviation = sqrt(mean(min(r, 0)^2)) over
    every day (empyrical's sortino_ratio with a required return of 0)."""
    if len(returns) < 2:
        undefined["sortino"] = "fewer than two days"
        return None
    downside = math.sqrt(statistics.fmean(min(r, 0.0) ** 2 for r in returns))
    if downside == 0:
        undefined["sortino"] = "no losing day"
        return None
    return statistics.fmean(returns) / downside * math.sqrt(YEAR_DAYS)


def is_closing(fill: Fill) -> bool:
    """True if the fill reduced (or closed, or flipped) the position it traded against."""
    signed = fill.qty if fill.side is Side.BUY else -fill.qty
    before = fill.position - signed
    return before != 0 and (before > 0) != (signed > 0)


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    return CONTEXT.divide(sum(values, ZERO), Decimal(len(values)))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
