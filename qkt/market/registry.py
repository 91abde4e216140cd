"""The feeds and history sources by broker name, resolved in this one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeAlias

from qkt.errors import UserError
from qkt.market.bybit import BybitFeed
from qkt.market.bybit_rest import BybitHistory
from qkt.market.feed import CandleFeed, FeedOptions
from qkt.market.history import HistorySource
from qkt.market.replay import CsvReplayFeed
from qkt.market.simulated import SimHistory, SimulatedFeed

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


HistoryFactory: TypeAlias = Callable[[FeedOptions], HistorySource]

HISTORIES: Final[dict[str, HistoryFactory]] = {
    "SIM": lambda options: SimHistory(options.seed),
    "BYBIT": lambda options: BybitHistory(options, "BYBIT"),
    "BYBIT_LINEAR": lambda options: BybitHistory(options, "BYBIT_LINEAR"),
}


def open_history(broker: str, options: FeedOptions) -> HistorySource:
    """A standalone history source for `broker` (`qkt fetch`); UserError if it has none."""
    factory = HISTORIES.get(broker)
    if factory is None:
        known = ", ".join(sorted(HISTORIES))
        raise UserError(f"no history source for broker {broker!r}: history exists for {known}")
    return factory(options)
