"""The CandleHub: ref-counted keys, ZeroMQ fan-out of closed candles, snapshots, subscribers."""

from __future__ import annotations

from qkt.hub.client import HubSubscriber, SubscriberStats
from qkt.hub.config import DEFAULT_BACKFILL, HubConfig
from qkt.hub.endpoints import HubEndpoints
from qkt.hub.errors import HubError, HubUnavailableError, UnknownKeyError, WireError
from qkt.hub.hub import CandleHub
from qkt.hub.intake import FeedFactory
from qkt.hub.reader import Gap
from qkt.hub.records import FeedEvent, KeyFreshness, KeyHistory, KeyStats, Warmth
from qkt.hub.wire import SequencedCandle

__all__ = [
    "DEFAULT_BACKFILL",
    "CandleHub",
    "FeedEvent",
    "FeedFactory",
    "Gap",
    "HubConfig",
    "HubEndpoints",
    "HubError",
    "HubSubscriber",
    "HubUnavailableError",
    "KeyFreshness",
    "KeyHistory",
    "KeyStats",
    "SequencedCandle",
    "SubscriberStats",
    "UnknownKeyError",
    "Warmth",
    "WireError",
]
