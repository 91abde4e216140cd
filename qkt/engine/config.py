"""How a run is configured: starting balance, fees, slippage, where market orders fill, risk
limits (limits.py) and buying power (margin.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Final

from qkt.engine.limits import RiskLimits
from qkt.engine.margin import MarginRules

DEFAULT_BALANCE: Final = Decimal(10_000)
# Quantities are rounded *down* to this step: a size never exceeds what the sizing asked for.
DEFAULT_QTY_STEP: Final = Decimal("0.00000001")


class FillAt(Enum):
    """Where a market order fills."""

    CLOSE = "close"  # the close of the candle whose rule placed it (default)
    NEXT_OPEN = "next_open"  # the open of the symbol's next candle


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """One strategy run's settings; money as Decimal."""

    balance: Decimal = DEFAULT_BALANCE
    fee_bps: Decimal = Decimal(0)  # on each fill's notional (qty * price)
    slippage_bps: Decimal = Decimal(0)  # against you: buys fill higher, sells lower
    fill_at: FillAt = FillAt.CLOSE
    qty_step: Decimal = DEFAULT_QTY_STEP
    limits: RiskLimits = RiskLimits()  # off, but for a generous orders-per-minute guard
    margin: MarginRules = MarginRules()  # spot buying power; `MarginRules(enabled=False)`: 0.13

    def __post_init__(self) -> None:
        for name in ("balance", "fee_bps", "slippage_bps", "qty_step"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"{name} must be a finite Decimal, got {value!r}")
        if self.fee_bps < 0 or self.slippage_bps < 0:
            raise ValueError("fee_bps and slippage_bps must not be negative")
        if self.qty_step <= 0:
            raise ValueError("qty_step must be positive")
