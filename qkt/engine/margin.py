"""Buying power and margin on the paper market (`MarginRules`, one per strategy).

Every position holds margin posted from the balance, valued at its average entry price:
`margin = |qty| * avg_price / L`, where L is the leverage: 1 on spot (you pay for what you
buy), the strategy's leverage on linear perpetuals (`BYBIT_LINEAR`; isolated margin).

    available = balance - sum of every position's margin        (balance = start + realized)

An order that opens or increases a position fills only if `available` stays >= 0 after it,
its fee included: a spot buy of q at p needs q * p + fee; a linear one q * p / L + fee.
Unrealized profit is not spendable (as on an exchange's isolated margin), so the balance never
goes below zero. On spot, a sell needs the position unless shorts are allowed; a spot short
posts its full notional (leverage 1).

Liquidation (linear, and spot shorts): with m the maintenance margin rate (0.5 %, Bybit's first
risk tier), a position is liquidated when the price reaches

    long:  avg_price * (1 - 1/L + m)        short: avg_price * (1 + 1/L - m)

where the equity left in the position equals its maintenance margin (`|qty| * avg_price * m`).
It is closed at that price (a gap beyond it is the exchange's insurance fund's loss, not the
trader's), paying the usual fee; an exit's fee is at most what the balance holds after its PnL
(the paper exchange never lends). A spot long is never liquidated: it cannot lose more than it
cost. `enabled=False` (`--margin off`) is qkt 0.13: nothing is checked, nothing liquidated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Final

from qkt.engine.matching import match_candle
from qkt.engine.orders import Instrument, Order, OrderKind, Side
from qkt.engine.portfolio import Portfolio
from qkt.errors import UserError
from qkt.market.models import Candle
from qkt.money import CONTEXT, ONE, ZERO, to_str

LINEAR_BROKERS: Final = frozenset({"BYBIT_LINEAR"})
DEFAULT_MAINTENANCE_RATE: Final = Decimal("0.005")
MAX_LEVERAGE: Final = Decimal(100)  # Bybit's highest


class MarginError(UserError):
    """A leverage or margin setting that makes no sense."""

    code = "bad_margin"


class MarketKind(Enum):
    """How an instrument is paid for."""

    SPOT = "spot"  # pay in full; no shorts unless allowed
    LINEAR = "linear"  # perpetual futures on margin, leverage L, liquidation


@dataclass(frozen=True, slots=True)
class MarginRules:
    """Buying power settings of one strategy (see the module docstring for the formulas)."""

    enabled: bool = True  # False: `--margin off`, qkt 0.13's unchecked behaviour
    leverage: Decimal = ONE  # linear only; spot is always 1
    maintenance_rate: Decimal = DEFAULT_MAINTENANCE_RATE
    allow_shorts: bool = False  # spot only; a linear strategy may always go short
    market: MarketKind | None = None  # None: by broker (BYBIT_LINEAR linear, the rest spot)

    def __post_init__(self) -> None:
        _check_leverage(self.leverage)
        rate = self.maintenance_rate
        if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate < ONE:
            raise MarginError(f"maintenance rate {rate!r} must be a fraction in [0, 1)")
        if rate >= ONE / self.leverage:
            raise MarginError(
                f"maintenance rate {rate} must be below the initial margin rate 1/{self.leverage}"
            )

    def kind_of(self, instrument: Instrument) -> MarketKind:
        """Spot or linear, for this instrument."""
        if self.market is not None:
            return self.market
        return MarketKind.LINEAR if instrument.broker in LINEAR_BROKERS else MarketKind.SPOT

    def liquidates(self, instrument: Instrument, long: bool) -> bool:
        """A long (or short) position in `instrument` has a liquidation price at all."""
        return self.enabled and not (long and self.kind_of(instrument) is MarketKind.SPOT)

    def leverage_of(self, instrument: Instrument) -> Decimal:
        """The leverage a position in `instrument` trades at."""
        return self.leverage if self.kind_of(instrument) is MarketKind.LINEAR else ONE


def parse_leverage(text: str) -> Decimal:
    """`--leverage N`: from 1 to 100 (decimals allowed, e.g. 2.5)."""
    try:
        value = Decimal(text.strip().lower().removesuffix("x"))
    except InvalidOperation:
        raise MarginError(f"--leverage: {text!r} is not a number (e.g. 5)") from None
    _check_leverage(value)
    return value


def parse_margin(text: str) -> bool:
    """`--margin on|off`: off keeps qkt 0.13's unchecked fills (for old backtests)."""
    word = text.strip().lower()
    if word not in ("on", "off"):
        raise MarginError(f"--margin: {text!r} must be `on` or `off`")
    return word == "on"


def margin_from_flags(
    leverage: str | None = None, margin: str | None = None, base: MarginRules | None = None
) -> MarginRules:
    """`MarginRules` from `--leverage` and `--margin` values (None: not given, keep `base`)."""
    rules = base or MarginRules()
    return MarginRules(
        enabled=rules.enabled if margin is None else parse_margin(margin),
        leverage=rules.leverage if leverage is None else parse_leverage(leverage),
        maintenance_rate=rules.maintenance_rate,
        allow_shorts=rules.allow_shorts,
        market=rules.market,
    )


def _check_leverage(value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise MarginError(f"--leverage: {value!r} is not an exact number")
    if not ONE <= value <= MAX_LEVERAGE:
        raise MarginError(f"--leverage: {value} must be from 1 to {MAX_LEVERAGE}")


def position_margin(qty: Decimal, avg_price: Decimal, leverage: Decimal) -> Decimal:
    """Margin a position holds: |qty| * avg_price / leverage."""
    return CONTEXT.divide(CONTEXT.multiply(abs(qty), avg_price), leverage)


def used_margin(portfolio: Portfolio, rules: MarginRules) -> Decimal:
    """Margin held by every open position."""
    total = ZERO
    for position in portfolio.positions():
        leverage = rules.leverage_of(position.instrument)
        total = CONTEXT.add(total, position_margin(position.qty, position.avg_price, leverage))
    return total


def available(portfolio: Portfolio, rules: MarginRules) -> Decimal:
    """Balance not held as margin: what a new position may use."""
    return CONTEXT.subtract(portfolio.balance, used_margin(portfolio, rules))


def check_order(
    portfolio: Portfolio,
    rules: MarginRules,
    instrument: Instrument,
    side: Side,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
) -> str | None:
    """Why a fill of `qty` at `price` paying `fee` may not happen (None: it may)."""
    if not rules.enabled:
        return None
    held = portfolio.position(instrument)
    after = portfolio.preview(instrument, side, qty, price, fee)
    spot = rules.kind_of(instrument) is MarketKind.SPOT
    if spot and not rules.allow_shorts and after.qty < 0:
        return (
            f"a spot sell needs the position: {to_str(qty)} {instrument.symbol} to sell,"
            f" {to_str(max(held, ZERO))} held (shorts are off)"
        )
    leverage = rules.leverage_of(instrument)
    before = available(portfolio, rules)
    released = position_margin(held, portfolio.avg_price(instrument), leverage)
    posted = position_margin(after.qty, after.avg_price, leverage)
    left = CONTEXT.add(CONTEXT.add(before, after.realized), CONTEXT.subtract(released, posted))
    if left >= 0:
        return None
    needs = CONTEXT.subtract(before, left)
    return (
        f"insufficient balance: needs {to_str(needs)} (price x qty"
        f"{'' if leverage == ONE else f' / leverage {to_str(leverage)}'} + fee),"
        f" available {to_str(before)}"
    )


def liquidation_price(
    rules: MarginRules, instrument: Instrument, qty: Decimal, avg_price: Decimal
) -> Decimal | None:
    """Where a position of `qty` (signed) entered at `avg_price` is liquidated; None if never
    (margin off, a spot long, flat)."""
    if qty == 0 or not rules.liquidates(instrument, qty > 0):
        return None
    initial = CONTEXT.divide(ONE, rules.leverage_of(instrument))
    if qty > 0:
        factor = CONTEXT.add(CONTEXT.subtract(ONE, initial), rules.maintenance_rate)
    else:
        factor = CONTEXT.subtract(CONTEXT.add(ONE, initial), rules.maintenance_rate)
    return CONTEXT.multiply(avg_price, factor)


def stop_fills_first(
    orders: Iterable[Order], candle: Candle, level: Decimal, held: Decimal
) -> bool:
    """One of the position's resting stops (or exits at market) fills on this candle at a
    price no worse than the liquidation price `level`: the price path reaches it first."""
    for order in orders:
        if not order.role.is_exit or order.kind is OrderKind.LIMIT:
            continue
        price = match_candle(order, candle).price
        if price is not None and (price >= level if held > 0 else price <= level):
            return True
    return False
