"""Bybit v5 public websocket messages: requests we send, pushes we parse (shared/docs/bybit.md).

Pure functions, no IO. Parsing is strict: prices and sizes must be decimal strings, every field
the feed relies on must be there, and anything else raises `WireError` naming the topic, so the
feed can log it once and skip it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, TypeAlias

import orjson

from qkt.market.models import Timeframe
from qkt.money import parse_decimal

# Kline intervals by length in ms. W and M are left out on purpose: Bybit's weeks start on
# Monday and its months vary, while qkt's timeframes are fixed lengths aligned to the epoch.
KLINE_INTERVALS: Final[dict[int, str]] = {
    minutes * 60_000: str(minutes) for minutes in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)
} | {86_400_000: "D"}
SPOT_MAX_ARGS: Final = 10  # spot rejects a whole request with more args than this
_KLINE_FIELDS: Final = ("open", "high", "low", "close", "volume")
_TOPIC_IN_TEXT: Final = re.compile(r'"topic"\s*:\s*"([^"]{1,100})"')


class WireError(ValueError):
    """A message that does not have the documented shape; `topic` says where it came from."""

    def __init__(self, topic: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{topic}: {reason}{': ' + detail if detail else ''}")
        self.topic = topic
        self.reason = reason  # stable text without the offending value: used to log once


@dataclass(frozen=True, slots=True)
class Upstream:
    """The one topic a symbol is subscribed with, and the base timeframe of its candles."""

    topic: str
    base: Timeframe | None  # None: publicTrade, candles are built from trades


def kline_topic(interval: str, symbol: str) -> str:
    """`kline.1.BTCUSDT`."""
    return f"kline.{interval}.{symbol}"


def trade_topic(symbol: str) -> str:
    """`publicTrade.BTCUSDT`."""
    return f"publicTrade.{symbol}"


def plan_upstream(symbol: str, timeframes: Sequence[Timeframe]) -> Upstream:
    """The single topic that serves every timeframe of `symbol`.

    The longest kline interval that divides every timeframe (so each is built from confirmed
    exchange klines, which are complete even after a reconnect), else the symbol's trades
    (seconds and other lengths that no kline interval divides).
    """
    common = math.gcd(*(timeframe.ms for timeframe in timeframes))
    for ms in sorted(KLINE_INTERVALS, reverse=True):
        if common % ms == 0:
            interval = KLINE_INTERVALS[ms]
            text = "1d" if interval == "D" else f"{ms // 60_000}m"
            return Upstream(kline_topic(interval, symbol), Timeframe.parse(text))
    return Upstream(trade_topic(symbol), None)


def request(req_id: str, op: str, args: Sequence[str] = ()) -> str:
    """A `subscribe` / `unsubscribe` / `ping` request as JSON text."""
    body: dict[str, Any] = {"req_id": req_id, "op": op}
    if args:
        body["args"] = list(args)
    return orjson.dumps(body).decode()


@dataclass(frozen=True, slots=True)
class Ack:
    """The answer to a request: subscribe/unsubscribe acks, and spot's pong."""

    op: str
    success: bool
    ret_msg: str
    req_id: str | None


@dataclass(frozen=True, slots=True)
class Pong:
    """Linear's answer to a ping."""


@dataclass(frozen=True, slots=True)
class Kline:
    """One kline of a `kline.*` push; `confirm` marks the final push of a closed candle."""

    start_ms: int
    interval: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    confirm: bool


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One trade of a `publicTrade.*` push."""

    ts_ms: int
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class Push:
    """A data message: its topic, the exchange's timestamp and its parsed entries."""

    topic: str
    ts_ms: int
    klines: tuple[Kline, ...] = ()
    trades: tuple[PublicTrade, ...] = ()


Message: TypeAlias = Ack | Pong | Push


def parse_message(text: str | bytes) -> Message:
    """Parse one websocket text frame; raise WireError for anything not documented."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        # Name the topic if it can be read at all, so the log says which stream is broken.
        found = _TOPIC_IN_TEXT.search(
            text if isinstance(text, str) else text.decode(errors="replace")
        )
        raise WireError(found[1] if found else "?", "not JSON", repr(text[:80])) from None
    if not isinstance(body, dict):
        raise WireError("?", "not a JSON object", repr(text[:80]))
    topic = body.get("topic")
    if topic is None:
        op = body.get("op")
        if op == "pong":
            return Pong()
        if isinstance(op, str) and isinstance(body.get("success"), bool):
            req_id = body.get("req_id")
            return Ack(op, body["success"], str(body.get("ret_msg", "")), _opt_str(req_id))
        raise WireError("?", "unknown message", repr(text[:80]))
    if not isinstance(topic, str):
        raise WireError("?", "topic is not a string", repr(topic))
    ts_ms = _int(topic, body, "ts")
    data = body.get("data")
    if not isinstance(data, list):
        raise WireError(topic, "data is not a list")
    if topic.startswith("kline."):
        return Push(topic, ts_ms, klines=tuple(_kline(topic, entry) for entry in data))
    if topic.startswith("publicTrade."):
        return Push(topic, ts_ms, trades=tuple(_trade(topic, entry) for entry in data))
    raise WireError(topic, "unknown topic")


def _kline(topic: str, entry: object) -> Kline:
    if not isinstance(entry, dict):
        raise WireError(topic, "kline entry is not an object")
    confirm = entry.get("confirm")
    if not isinstance(confirm, bool):
        raise WireError(topic, "missing or non-boolean field 'confirm'")
    interval = entry.get("interval")
    if not isinstance(interval, str):
        raise WireError(topic, "missing field 'interval'")
    start_ms = _int(topic, entry, "start")
    o, h, lo, c, v = (_decimal(topic, entry, name) for name in _KLINE_FIELDS)
    kline = Kline(start_ms, interval, o, h, lo, c, v, confirm)
    if not lo <= min(o, c) <= max(o, c) <= h:
        raise WireError(topic, "inconsistent OHLC", f"{kline}")
    if kline.volume < 0:
        raise WireError(topic, "negative volume", str(kline.volume))
    return kline


def _trade(topic: str, entry: object) -> PublicTrade:
    if not isinstance(entry, dict):
        raise WireError(topic, "trade entry is not an object")
    trade = PublicTrade(
        _int(topic, entry, "T"), _decimal(topic, entry, "p"), _decimal(topic, entry, "v")
    )
    if trade.price <= 0 or trade.size < 0:
        raise WireError(topic, "non-positive price or negative size", f"{trade}")
    return trade


def _int(topic: str, body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    # bool is an int in Python; a timestamp never is one.
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(topic, f"missing or non-integer field {name!r}", repr(value))
    return value


def _decimal(topic: str, body: dict[str, Any], name: str) -> Decimal:
    value = body.get(name)
    if not isinstance(value, str):
        # Bybit sends prices as strings; a JSON number would already have gone through a float.
        raise WireError(topic, f"missing or non-string field {name!r}", repr(value))
    try:
        return parse_decimal(value)
    except ValueError:
        raise WireError(topic, f"non-numeric field {name!r}", repr(value)) from None


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
