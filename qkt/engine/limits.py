"""Risk limits of one strategy (`RiskLimits`), of the whole daemon (`PortfolioLimits`), and the
one parser per flag value that the CLI (`--max-daily-loss 250`) and the API share.

Units: money in the account's currency (exact decimals), drawdown in percent of the peak
equity (`20` = 20 %; `20%` is accepted too), counts as whole numbers. Every limit may be `off`
(None). Off by default, except a generous `max_orders_per_minute` that stops a runaway rule
(one that fires on every candle of a fast stream) before fees eat the account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from qkt.errors import UserError
from qkt.money import to_str

DEFAULT_MAX_ORDERS_PER_MINUTE: Final = 60
# Past these a value is a typo, not a limit (a loss limit of 10^15 limits nothing).
MAX_MONEY: Final = Decimal(10) ** 15
MAX_ORDERS_PER_MINUTE: Final = 100_000
MAX_LOSS_STREAK: Final = 10_000
OFF: Final = "off"


class RiskLimitError(UserError):
    """A limit value that makes no sense (negative, zero, absurd, not a number)."""

    code = "bad_risk_limit"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """One strategy's limits; None = off. See docs/risk.md for when each is checked."""

    max_daily_loss: Decimal | None = None  # money: equity now vs. at 00:00 UTC
    max_drawdown_pct: Decimal | None = None  # percent below the peak equity
    max_position_notional: Decimal | None = None  # money: |qty| * price of one position
    max_orders_per_minute: int | None = DEFAULT_MAX_ORDERS_PER_MINUTE  # orders rules placed
    max_loss_streak: int | None = None  # consecutive losing closing fills

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            value = getattr(self, name)
            if value is not None:
                check(value, _flag(name))

    def to_json(self) -> dict[str, Any]:
        """As JSON: money and percent as exact strings, off as null."""
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PortfolioLimits:
    """Daemon-wide limits over every strategy's equity; None = off."""

    max_daily_loss: Decimal | None = None  # money: the sum of the strategies' daily losses
    max_drawdown_pct: Decimal | None = None  # percent below the summed equity's peak

    def __post_init__(self) -> None:
        if self.max_daily_loss is not None:
            _check_money(self.max_daily_loss, "--max-daily-loss")
        if self.max_drawdown_pct is not None:
            _check_pct(self.max_drawdown_pct, "--max-drawdown-pct")


# -- parsing a flag value -------------------------------------------------------------------


def parse_max_daily_loss(text: str) -> Decimal | None:
    """`--max-daily-loss MONEY|off`: a positive amount of money."""
    return _parse_money(text, "--max-daily-loss")


def parse_max_drawdown_pct(text: str) -> Decimal | None:
    """`--max-drawdown-pct P|off`: a percent of the peak equity, above 0 and at most 100."""
    if _is_off(text):
        return None
    number = _decimal(text.strip().removesuffix("%"), "--max-drawdown-pct", "a percent")
    _check_pct(number, "--max-drawdown-pct")
    return number


def parse_max_position_notional(text: str) -> Decimal | None:
    """`--max-position-notional MONEY|off`: a positive amount of money."""
    return _parse_money(text, "--max-position-notional")


def parse_max_orders_per_minute(text: str) -> int | None:
    """`--max-orders-per-minute N|off`: a whole number of orders, at least 1."""
    return _parse_count(text, "--max-orders-per-minute", MAX_ORDERS_PER_MINUTE)


def parse_max_loss_streak(text: str) -> int | None:
    """`--max-loss-streak N|off`: a whole number of losing trades in a row, at least 1."""
    return _parse_count(text, "--max-loss-streak", MAX_LOSS_STREAK)


LIMIT_FLAGS: Final[Mapping[str, Callable[[str], Decimal | int | None]]] = {
    "--max-daily-loss": parse_max_daily_loss,
    "--max-drawdown-pct": parse_max_drawdown_pct,
    "--max-position-notional": parse_max_position_notional,
    "--max-orders-per-minute": parse_max_orders_per_minute,
    "--max-loss-streak": parse_max_loss_streak,
}


def limits_from_flags(values: Mapping[str, str], base: RiskLimits | None = None) -> RiskLimits:
    """`RiskLimits` from flag values (`{"--max-daily-loss": "250"}`; the `--` is optional and
    `_` may stand for `-`); flags not given keep `base`'s values (the defaults)."""
    chosen: dict[str, Any] = {}
    for raw, text in values.items():
        flag = "--" + raw.removeprefix("--").replace("_", "-")
        parser = LIMIT_FLAGS.get(flag)
        if parser is None:
            raise RiskLimitError(f"unknown risk limit {raw!r} (known: {', '.join(LIMIT_FLAGS)})")
        chosen[flag[2:].replace("-", "_")] = parser(text)
    current = base or RiskLimits()
    return RiskLimits(**{**{f.name: getattr(current, f.name) for f in fields(current)}, **chosen})


# -- the checks -----------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_off(text: str) -> bool:
    return text.strip().lower() in (OFF, "none")


def _decimal(text: str, flag: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise RiskLimitError(f"{flag}: {text!r} is not {what} (or `off`)") from None
    if not value.is_finite():
        raise RiskLimitError(f"{flag}: {text!r} is not {what} (or `off`)")
    return value


def _parse_money(text: str, flag: str) -> Decimal | None:
    if _is_off(text):
        return None
    value = _decimal(text, flag, "an amount of money")
    _check_money(value, flag)
    return value


def _parse_count(text: str, flag: str, most: int) -> int | None:
    if _is_off(text):
        return None
    value = _decimal(text, flag, "a whole number")
    if value != value.to_integral_value():
        raise RiskLimitError(f"{flag}: {text.strip()} is not a whole number")
    _check_count(int(value), flag, most)
    return int(value)


def _check_money(value: Decimal, flag: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise RiskLimitError(f"{flag}: {value!r} is not an exact amount of money")
    if value <= 0:
        raise RiskLimitError(f"{flag}: {to_str(value)} must be above 0 (use `off` for no limit)")
    if value > MAX_MONEY:
        raise RiskLimitError(f"{flag}: {to_str(value)} is absurdly large (at most {MAX_MONEY:,})")


def _check_pct(value: Decimal, flag: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise RiskLimitError(f"{flag}: {value!r} is not an exact percent")
    if not 0 < value <= 100:
        raise RiskLimitError(
            f"{flag}: {to_str(value)} must be a percent above 0 and at most 100 (20 means 20 %)"
        )


def _check_count(value: int, flag: str, most: int = MAX_ORDERS_PER_MINUTE) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RiskLimitError(f"{flag}: {value!r} is not a whole number")
    if value < 1:
        raise RiskLimitError(f"{flag}: {value} must be at least 1 (use `off` for no limit)")
    if value > most:
        raise RiskLimitError(f"{flag}: {value} is absurdly large (at most {most:,})")


_CHECKS: Final[dict[str, Callable[[Any, str], None]]] = {
    "max_daily_loss": _check_money,
    "max_drawdown_pct": _check_pct,
    "max_position_notional": _check_money,
    "max_orders_per_minute": lambda v, f: _check_count(v, f, MAX_ORDERS_PER_MINUTE),
    "max_loss_streak": lambda v, f: _check_count(v, f, MAX_LOSS_STREAK),
}


def _json(value: Decimal | int | None) -> str | int | None:
    return to_str(value) if isinstance(value, Decimal) else value
