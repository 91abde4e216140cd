"""The feed registry: one place maps broker names to feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from qkt.errors import UserError
from qkt.market.bybit import BybitFeed
from qkt.market.feed import FeedOptions
from qkt.market.registry import FEEDS, open_feed
from qkt.market.replay import CsvReplayFeed
from qkt.market.simulated import SimulatedFeed


def test_every_broker_opens_its_feed(tmp_path: Path) -> None:
    options = FeedOptions(data_path=tmp_path)
    assert set(FEEDS) == {"SIM", "BYBIT", "BYBIT_LINEAR", "BACKTEST"}
    kinds = {
        "SIM": SimulatedFeed,
        "BYBIT": BybitFeed,
        "BYBIT_LINEAR": BybitFeed,
        "BACKTEST": CsvReplayFeed,
    }
    for broker, kind in kinds.items():
        feed = open_feed(broker, options)
        assert isinstance(feed, kind)
        assert feed.broker == broker


def test_an_unknown_broker_names_the_known_ones_and_sim() -> None:
    with pytest.raises(UserError) as caught:
        open_feed("KRAKEN", FeedOptions())
    message = caught.value.message
    assert "'KRAKEN'" in message
    assert "BACKTEST, BYBIT, BYBIT_LINEAR, SIM" in message
    assert "--sim" in message
