"""BybitHistory: closed candles from Bybit's v5 REST `GET /v5/market/kline` (shared/docs/bybit.md).

Each request asks for one window of at most 1,000 rows of the base interval (`category` always
sent, `start` and `end` both sent), so which end of an over-long range the exchange would cut
never matters. Rows arrive newest first as strings; they are reversed, the still-forming candle
is dropped, and timeframes that Bybit has no interval for (2m, 7m, ...) are built from the
finest interval that divides them. Seconds cannot be had: Bybit's finest kline is one minute.

Every request of the process draws on one `RequestBudget` (Bybit allows 600 requests per 5 s per
IP, and every key of the box shares that IP); a `10006` answer or an HTTP 403 ("access too
frequent") stops every request of the process for a while, then retries, a bounded number of
times, as do timeouts and server errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson

from qkt.market.aggregate import CandleAggregator
from qkt.market.budget import SHARED_BUDGET, RequestBudget
from qkt.market.bybit_wire import KLINE_INTERVALS
from qkt.market.feed import FeedOptions
from qkt.market.history import HistoryError
from qkt.market.models import Candle, CandleKey, Timeframe
from qkt.money import parse_decimal

log = logging.getLogger(__name__)

KLINE_PATH: Final = "/v5/market/kline"
MAX_ROWS: Final = 1_000  # Bybit's largest `limit`
RATE_LIMITED: Final = 10006


def base_interval(timeframe: Timeframe) -> tuple[Timeframe, str]:
    """The longest Bybit interval dividing `timeframe`: (its timeframe, its wire name)."""
    for ms in sorted(KLINE_INTERVALS, reverse=True):
        if timeframe.ms % ms == 0:
            name = KLINE_INTERVALS[ms]
            return Timeframe.parse("1d" if name == "D" else f"{ms // 60_000}m"), name
    raise HistoryError(
        f"Bybit has no kline history for {timeframe} candles (its shortest interval is 1m)",
        permanent=True,
    )


class BybitHistory:
    """`HistorySource` for `BYBIT` (spot) and `BYBIT_LINEAR` keys over Bybit's REST API."""

    def __init__(
        self, options: FeedOptions, broker: str = "BYBIT", budget: RequestBudget | None = None
    ) -> None:
        self._broker = broker
        self._category = "linear" if broker == "BYBIT_LINEAR" else "spot"
        self._base = options.bybit_rest_url.rstrip("/")
        self._timeout_s = options.rest_timeout_s
        self._retries = max(0, options.rest_retries)
        self._backoff_s = options.rest_backoff_s
        self._budget = budget or SHARED_BUDGET
        # The environment's proxy settings apply to the exchange, never to a loopback server.
        loopback = urlsplit(self._base).hostname in ("127.0.0.1", "localhost", "::1")
        self._trust_env = not loopback
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        """`bybit-rest`."""
        return "bybit-rest"

    def now_ms(self) -> int:
        """The local wall clock (the exchange's own is only known per answer)."""
        return time.time_ns() // 10**6

    async def pages(
        self, key: CandleKey, start_ms: int, end_ms: int
    ) -> AsyncIterator[list[Candle]]:
        """Closed candles of `key` in [start, end), oldest first, one page per request."""
        base, interval = base_interval(key.timeframe)
        tf = key.timeframe.ms
        first = -(-start_ms // tf) * tf
        end = min(end_ms, key.timeframe.bucket(self.now_ms()))
        if end <= first:
            return
        aggregator = None
        if base != key.timeframe:
            aggregator = CandleAggregator(key.broker, key.symbol, base)
            aggregator.add_timeframe(key.timeframe, since_ms=first)
        window = MAX_ROWS * base.ms
        for lo in range(first, end, window):
            hi = min(lo + window, end)
            rows, server_ms = await self._request(key.symbol, interval, lo, hi - 1)
            base_key = CandleKey(key.broker, key.symbol, base)
            candles = [c for c in self._candles(base_key, rows, server_ms) if lo <= c.open_ms < hi]
            if aggregator is not None:
                built: list[Candle] = []
                for candle in candles:
                    built += aggregator.on_candle(candle)
                candles = [c for c in built if c.end_ms <= end]
            if candles:
                yield candles

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- one request -------------------------------------------------------------------------

    async def _request(
        self, symbol: str, interval: str, start: int, end: int
    ) -> tuple[list[Any], int | None]:
        """One window's rows (newest first) and the exchange's clock when it answered."""
        params = {
            "category": self._category,
            "symbol": symbol.upper(),
            "interval": interval,
            "start": str(start),
            "end": str(end),
            "limit": str(MAX_ROWS),
        }
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base, timeout=self._timeout_s, trust_env=self._trust_env
            )
        problem = ""
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(min(self._backoff_s * 2 ** (attempt - 1), 30.0))
            await self._budget.take()
            try:
                reply = await self._client.get(KLINE_PATH, params=params)
            except httpx.HTTPError as error:
                # The class name only: an httpx message may carry the URL and its query.
                problem = f"cannot reach Bybit at {self._base} ({type(error).__name__})"
                continue
            if reply.status_code in (403, 429):
                self._budget.pause(self._backoff_s * 2**attempt)
                problem = f"Bybit rate limit (HTTP {reply.status_code})"
                continue
            if reply.status_code >= 500:
                problem = f"Bybit answered HTTP {reply.status_code}"
                continue
            if reply.status_code != 200:
                raise HistoryError(f"Bybit answered HTTP {reply.status_code} for {symbol}")
            body = _json(reply.content)
            code = body.get("retCode")
            if code == RATE_LIMITED:
                self._budget.pause(self._backoff_s * 2**attempt)
                problem = "Bybit rate limit (retCode 10006)"
                continue
            if code != 0:
                message = str(body.get("retMsg", ""))[:200]
                raise HistoryError(
                    f"Bybit refused {self._category} {symbol} klines: {message} (retCode {code})",
                    permanent=True,
                )
            result = body.get("result")
            rows = result.get("list") if isinstance(result, dict) else None
            if not isinstance(rows, list):
                raise HistoryError("Bybit kline answer without result.list")
            server_ms = body.get("time")
            return rows, server_ms if isinstance(server_ms, int) else None
        raise HistoryError(f"{problem}; gave up after {self._retries + 1} attempts")

    def _candles(self, key: CandleKey, rows: list[Any], server_ms: int | None) -> list[Candle]:
        """Rows (newest first, strings) as closed candles, oldest first; bad rows skipped.

        Closed means ended by the earlier of our clock and the exchange's: a local clock running
        ahead must not pass off the forming candle as closed (live would then be deduplicated
        against a half-built candle)."""
        now = self.now_ms() if server_ms is None else min(self.now_ms(), server_ms)
        closed_before = key.timeframe.bucket(now)
        out: list[Candle] = []
        for row in reversed(rows):
            candle = _row(key, row)
            if candle is None:
                log.warning("%s: malformed kline row skipped: %.120r", key, row)
            elif candle.end_ms <= closed_before:  # the newest row may still be forming
                out.append(candle)
        return out


def _json(content: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise HistoryError("Bybit answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise HistoryError("Bybit answered JSON that is not an object")
    return body


def _row(key: CandleKey, row: object) -> Candle | None:
    if not isinstance(row, list) or len(row) < 6 or not all(isinstance(v, str) for v in row[:6]):
        return None
    try:
        start = int(row[0])
        o, h, lo, c, v = (parse_decimal(text) for text in row[1:6])
    except ValueError:
        return None
    if start % key.timeframe.ms or not lo <= min(o, c) <= max(o, c) <= h or v < Decimal(0):
        return None
    return Candle(key, start, o, h, lo, c, v)
