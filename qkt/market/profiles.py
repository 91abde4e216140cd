"""Per-symbol price level, tick and lot size of the simulated market (known pairs, else derived)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final


@dataclass(frozen=True, slots=True)
class Profile:
    """A symbol's plausible price level, tick size and lot size."""

    price: float
    tick: Decimal
    lot: Decimal


PROFILES: Final[dict[str, Profile]] = {
    "BTCUSDT": Profile(65_000.0, Decimal("0.1"), Decimal("0.001")),
    "ETHUSDT": Profile(3_200.0, Decimal("0.01"), Decimal("0.01")),
    "SOLUSDT": Profile(150.0, Decimal("0.01"), Decimal("0.1")),
    "BNBUSDT": Profile(600.0, Decimal("0.1"), Decimal("0.01")),
    "XRPUSDT": Profile(0.6, Decimal("0.0001"), Decimal("10")),
    "DOGEUSDT": Profile(0.15, Decimal("0.00001"), Decimal("100")),
}


def profile_for(symbol: str) -> Profile:
    """The symbol's profile; an unknown symbol gets a stable one derived from its name."""
    known = PROFILES.get(symbol.upper())
    if known is not None:
        return known
    digest = int.from_bytes(hashlib.sha256(symbol.upper().encode()).digest()[:8], "big")
    price = (1 + digest % 9) * 10.0 ** (digest // 9 % 5 - 1)  # 0.1 .. 90,000
    magnitude = math.floor(math.log10(price))
    # Five significant digits of price; a lot worth roughly one to ten units of quote currency.
    return Profile(price, Decimal(1).scaleb(magnitude - 4), Decimal(1).scaleb(-magnitude))
