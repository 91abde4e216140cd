"""The CandleHub: ref-counted keys, ZeroMQ fan-out of closed candles, snapshots, subscribers."""

from __future__ import annotations

from qkt.hub.client import Gap, HubSubscriber, SubscriberStats
from qkt.hub.endpoints import HubEndpoints
from qkt.hub.errors import HubError, HubUnavailableError, UnknownKeyError, WireError
from qkt.hub.hub import CandleHub, FeedFactory, HubConfig, KeyStats
from qkt.hub.wire import SequencedCandle

__all__ = [
    "CandleHub",
    "FeedFactory",
    "Gap",
    "HubConfig",
    "HubEndpoints",
    "HubError",
    "HubSubscriber",
    "HubUnavailableError",
    "KeyStats",
    "SequencedCandle",
    "SubscriberStats",
    "UnknownKeyError",
    "WireError",
]
