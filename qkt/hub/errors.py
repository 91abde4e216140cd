"""The hub's failures: a bad frame on the wire, a hub that is not there, a key it does not carry."""

from __future__ import annotations

from qkt.errors import InternalError, QktError


class WireError(ValueError):
    """A frame that is not a valid qkt hub message (garbage, wrong version, wrong shape)."""


class HubError(InternalError):
    """The hub was used wrongly by qkt itself (release of a key it does not hold, bad state)."""

    code = "hub_error"


class HubUnavailableError(QktError):
    """No CandleHub answers at the endpoints a subscriber was given."""

    code = "hub_unavailable"
    http_status = 503


class UnknownKeyError(QktError):
    """A subscriber asked for a candle key the hub does not carry (nobody acquired it)."""

    code = "unknown_key"
    http_status = 404
