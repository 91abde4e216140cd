"""The CandleHub: ref-counted keys, ZeroMQ fan-out of closed candles, snapshots, subscribers."""

from __future__ import annotations

from qkt.hub.client import Gap, HubSubscriber, SubscriberStats
from qkt.hub.endpoints import HubEndpoints
from qkt.hub.errors import HubError, HubUnavailableError, UnknownKeyError, WireError
from qkt.hub.hub import DEFAULT_BACKFILL, CandleHub, FeedFactory, HubConfig
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
