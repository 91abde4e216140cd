"""One parser per risk flag value (shared by the CLI and the API), and the daemon-wide limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qkt.engine.halt import HaltKind
from qkt.engine.limits import (
    LIMIT_FLAGS,
    PortfolioLimits,
    RiskLimitError,
    RiskLimits,
    limits_from_flags,
    parse_max_daily_loss,
    parse_max_drawdown_pct,
    parse_max_loss_streak,
    parse_max_orders_per_minute,
    parse_max_position_notional,
)
from qkt.engine.risk import StrategyEquity, evaluate_portfolio_limits
from qkt.log import iso_utc
from tests.engine.builder import T0, D


def test_each_flag_parses_its_unit() -> None:
    assert parse_max_daily_loss("250") == D(250)
    assert parse_max_daily_loss("0.5") == D("0.5")
    assert parse_max_drawdown_pct("20") == D(20)
    assert parse_max_drawdown_pct("12.5%") == D("12.5")
    assert parse_max_position_notional("5000") == D(5000)
    assert parse_max_orders_per_minute("30") == 30
    assert parse_max_loss_streak("4") == 4
    for parser in LIMIT_FLAGS.values():
        assert parser("off") is None and parser(" OFF ") is None


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("--max-daily-loss", "-5", "--max-daily-loss: -5 must be above 0 (use `off` for no limit)"),
        ("--max-daily-loss", "0", "--max-daily-loss: 0 must be above 0"),
        ("--max-daily-loss", "lots", "--max-daily-loss: 'lots' is not an amount of money"),
        ("--max-daily-loss", "nan", "--max-daily-loss: 'nan' is not an amount of money"),
        ("--max-daily-loss", "1e20", "--max-daily-loss: 100000000000000000000 is absurdly large"),
        ("--max-drawdown-pct", "0", "--max-drawdown-pct: 0 must be a percent above 0 and at most"),
        ("--max-drawdown-pct", "150", "--max-drawdown-pct: 150 must be a percent above 0"),
        ("--max-drawdown-pct", "-1%", "--max-drawdown-pct: -1 must be a percent"),
        ("--max-position-notional", "-100", "--max-position-notional: -100 must be above 0"),
        ("--max-orders-per-minute", "0", "--max-orders-per-minute: 0 must be at least 1"),
        ("--max-orders-per-minute", "2.5", "--max-orders-per-minute: 2.5 is not a whole number"),
        ("--max-orders-per-minute", "10000000", "--max-orders-per-minute: 10000000 is absurdly"),
        ("--max-loss-streak", "-2", "--max-loss-streak: -2 must be at least 1"),
        ("--max-loss-streak", "many", "--max-loss-streak: 'many' is not a whole number"),
    ],
)
def test_bad_values_are_one_clear_line_naming_the_flag(flag: str, text: str, message: str) -> None:
    with pytest.raises(RiskLimitError) as caught:
        LIMIT_FLAGS[flag](text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert caught.value.http_status == 400 and caught.value.code == "bad_risk_limit"


def test_limits_from_flags_keeps_the_defaults_for_flags_not_given() -> None:
    limits = limits_from_flags({"--max-daily-loss": "250", "max_loss_streak": "3"})
    assert limits == RiskLimits(max_daily_loss=D(250), max_loss_streak=3)
    assert limits.max_orders_per_minute == 60
    assert limits_from_flags({"max-orders-per-minute": "off"}).max_orders_per_minute is None
    base = RiskLimits(max_drawdown_pct=D(20))
    assert limits_from_flags({"--max-daily-loss": "5"}, base).max_drawdown_pct == D(20)
    with pytest.raises(RiskLimitError, match="unknown risk limit '--max-fun'"):
        limits_from_flags({"--max-fun": "1"})


# -- daemon-wide ----------------------------------------------------------------------------


def rows(*figures: tuple[int, int]) -> list[StrategyEquity]:
    return [StrategyEquity(f"s{i}", D(now), D(start)) for i, (now, start) in enumerate(figures)]


def test_the_sum_of_daily_losses_breaches_the_daemon_wide_daily_loss() -> None:
    limits = PortfolioLimits(max_daily_loss=D(300))
    # One strategy lost 400, another made 150: together 250, under the limit.
    assert evaluate_portfolio_limits(rows((600, 1000), (1150, 1000)), limits, D(2150), T0) is None
    breach = evaluate_portfolio_limits(rows((600, 1000), (1100, 1000)), limits, D(2100), T0)
    assert breach is not None
    assert (breach.kind, breach.value, breach.limit) == (HaltKind.PORTFOLIO_DAILY_LOSS, 300, 300)
    assert breach.kind.lifts_at_midnight
    assert breach.reason == (
        "portfolio_daily_loss 300 breached: every strategy together lost 300 since 00:00 UTC"
        f" at {iso_utc(T0)}"
    )


def test_the_summed_equity_s_drawdown_breaches_from_the_peak_the_daemon_keeps() -> None:
    limits = PortfolioLimits(max_drawdown_pct=D(25))
    figures = rows((700, 700), (800, 800))  # no daily loss: the day started there
    assert evaluate_portfolio_limits(figures, limits, D(1500), T0) is None
    assert evaluate_portfolio_limits(figures, limits, D(1999), T0) is None  # 24.96 %
    breach = evaluate_portfolio_limits(figures, limits, D(2000), T0)
    assert breach is not None
    assert (breach.kind, breach.value) == (HaltKind.PORTFOLIO_DRAWDOWN_PCT, Decimal(25))
    assert not breach.kind.lifts_at_midnight


def test_no_limits_no_breach_and_bad_daemon_limits_are_refused() -> None:
    assert evaluate_portfolio_limits(rows((1, 1000)), PortfolioLimits(), D(1000), T0) is None
    with pytest.raises(RiskLimitError, match="--max-drawdown-pct"):
        PortfolioLimits(max_drawdown_pct=D(0))
