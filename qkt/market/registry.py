"""The feeds by broker name, resolved in this one place: `FEEDS` and `open_feed`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeAlias

from qkt.errors import UserError
from qkt.market.bybit import BybitFeed
from qkt.market.feed import CandleFeed, FeedOptions
from qkt.market.replay import CsvReplayFeed
from qkt.market.simulated import SimulatedFeed

FeedFactory: TypeAlias = Callable[[FeedOptions], CandleFeed]

FEEDS: Final[dict[str, FeedFactory]] = {
    "SIM": lambda options: SimulatedFeed(options, "SIM"),
    "BYBIT": lambda options: BybitFeed(options, "BYBIT"),
    "BYBIT_LINEAR": lambda options: BybitFeed(options, "BYBIT_LINEAR"),
    "BACKTEST": lambda options: CsvReplayFeed(options, "BACKTEST"),
}


def open_feed(broker: str, options: FeedOptions) -> CandleFeed:
    """A new feed for `broker`; UserError naming the brokers that have one if it is unknown."""
    factory = FEEDS.get(broker)
    if factory is None:
        known = ", ".join(sorted(FEEDS))
        raise UserError(
            f"no market data feed for broker {broker!r}: feeds exist for {known}; "
            "--sim runs any strategy on the simulated market"
        )
    return factory(options)
