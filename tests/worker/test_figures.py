"""Edge cases of the backtest figures that the end-to-end tests do not reach."""

from __future__ import annotations

from decimal import Decimal

from qkt.worker.figures import DAY_MS, EquityCurve, compute, drawdowns
from qkt.worker.htmlreport import monthly_returns

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000


def _curve(values: list[str], step: int = HOUR) -> EquityCurve:
    curve = EquityCurve(Decimal(100), start_ms=T0)
    for i, value in enumerate(values):
        curve.times.append(T0 + (i + 1) * step)
        curve.equity.append(Decimal(value))
        curve.exposed.append(True)
        curve.hold.append(1.0)
    return curve


def test_a_huge_return_over_hours_has_no_cagr_rather_than_a_crash() -> None:
    figures = compute(_curve(["150", "900", "5000"]), [])
    assert figures.total_return == 49.0
    assert figures.cagr is None and "too short" in figures.undefined["cagr"]
    assert figures.calmar is None


def test_longest_drawdown_runs_until_the_peak_is_regained_or_the_end() -> None:
    # Peak 110 at hour 1; under water hours 2-4; regained at hour 5; under again 6-7 (to the end).
    curve = _curve(["110", "100", "90", "105", "110", "108", "107"])
    money, fraction, longest = drawdowns(curve)
    assert money == Decimal(20) and fraction == Decimal("0.1818181818181818")  # 16 digits
    assert longest == 4 * HOUR  # hour 1 -> hour 5


def test_drawdown_is_capped_at_the_whole_peak_once_equity_is_negative() -> None:
    money, fraction, _ = drawdowns(_curve(["120", "-30"]))
    assert money == Decimal(150) and fraction == Decimal(1)
    figures = compute(_curve(["120", "-30", "10"]), [])
    assert figures.wiped_out_ms == T0 + 2 * HOUR
    assert figures.sharpe is None and figures.total_return is None


def test_monthly_returns_chain_month_ends_from_the_starting_balance() -> None:
    curve = EquityCurve(Decimal(100), start_ms=T0)
    for day, value in ((10, "110"), (31, "121"), (40, "108.9"), (80, "108.9")):
        curve.times.append(T0 + day * DAY_MS)
        curve.equity.append(Decimal(value))
    years, grid = monthly_returns(curve)
    assert years == [2026]
    jan, feb, mar = grid[0][:3]
    assert jan is not None and abs(jan - 0.21) < 1e-12  # 121 / 100 - 1 (Jan 31 ends at Feb 1 00:00)
    assert feb is not None and abs(feb - (108.9 / 121 - 1)) < 1e-12
    assert mar == 0.0 and grid[0][3:] == [None] * 9
