"""A fake Bybit v5 public websocket exchange: a real `websockets` server on 127.0.0.1.

It speaks the wire format of shared/docs/bybit.md: subscribe/unsubscribe acks
(`success, ret_msg, conn_id, req_id, op`), spot's 10-args limit (an over-long request is refused
whole), ping -> pong (spot and linear shapes), kline and publicTrade pushes. It serves
`/v5/public/spot` and `/v5/public/linear` on one ephemeral port.

The server runs on its own event loop in a background thread, so every method here is a plain,
thread-safe call usable from sync tests and from async tests alike (it never waits on the
caller's loop). Wait for effects with `tests.helpers.wait_until` / `wait_until_async`, e.g.
`await wait_until_async(lambda: "kline.1.BTCUSDT" in fake.subscribed())`.

    with fake_bybit() as fake:
        options = FeedOptions(bybit_spot_url=fake.spot_url, bybit_linear_url=fake.linear_url)
        ...
        fake.push_kline("BTCUSDT", start_ms, "100", "101", "99", "100.5", "3")
        fake.drop_all()                  # cut every connection (the feed must reconnect)
        fake.stall(); fake.resume()      # stop / start answering and pushing
        fake.requests                    # every subscribe/unsubscribe/ping received

The same port serves the REST history route `GET /v5/market/kline` (`fake.rest_url`): rows of the
series given with `add_klines`, newest first as strings, `limit` (<= 1,000) newest of the range,
an optional forming candle (`set_forming`) as the first row, injectable `retCode` errors and
`10006` / HTTP 403 rate limits, an optional delay, and every query logged (`rest_requests`).
`stop_websocket()` refuses websocket handshakes (and cuts the open ones) while REST keeps
answering; `start_websocket()` accepts them again.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response

KlineRow = tuple[int, str, str, str, str, str]  # start_ms, open, high, low, close, volume

T = TypeVar("T")

CATEGORIES: Final = ("spot", "linear")
SPOT_MAX_ARGS: Final = 10
KLINE_INTERVAL_MS: Final[dict[str, int]] = {
    **{str(m): m * 60_000 for m in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    "D": 86_400_000,
    "W": 7 * 86_400_000,
    "M": 31 * 86_400_000,
}
_TOPIC: Final = re.compile(
    r"(kline\.(1|3|5|15|30|60|120|240|360|720|D|W|M)|publicTrade)\.[A-Z0-9]+"
)


@dataclass(frozen=True, slots=True)
class Request:
    """One request a client sent: which connection (1-based, in opening order), what it asked."""

    conn: int
    category: str
    op: str
    args: tuple[str, ...]
    req_id: str | None


@dataclass(slots=True)
class _Client:
    number: int
    category: str
    ws: ServerConnection
    conn_id: str
    topics: set[str] = field(default_factory=set)


class FakeBybit:
    """The fake exchange; make it with `fake_bybit()` (which starts and stops it)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-bybit", daemon=True
        )
        self._lock = threading.Lock()
        self._clients: dict[int, _Client] = {}
        self._opened = 0
        self._requests: list[Request] = []
        self._stalled = False
        self._server: Server | None = None
        self.port = 0
        self._series: dict[tuple[str, str, str], dict[int, KlineRow]] = {}
        self._forming: dict[tuple[str, str, str], KlineRow] = {}
        self._rest_log: list[dict[str, str]] = []
        self._rest_faults: list[tuple[int, int, str]] = []  # (http status, retCode, retMsg)
        self.rest_delay_s = 0.0
        self.rest_clock_offset_ms = 0  # the exchange's clock in answers (`time`) vs the wall
        self._ws_stopped = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server thread and bind 127.0.0.1 on an ephemeral port."""
        self._thread.start()
        self._server = self._call(self._start())
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Close every connection, stop the server and its thread."""
        if self._server is not None:
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def spot_url(self) -> str:
        """`ws://127.0.0.1:<port>/v5/public/spot`."""
        return self.url("spot")

    @property
    def linear_url(self) -> str:
        """`ws://127.0.0.1:<port>/v5/public/linear`."""
        return self.url("linear")

    @property
    def rest_url(self) -> str:
        """`http://127.0.0.1:<port>` (the REST base, like `https://api.bybit.com`)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, category: str) -> str:
        """The websocket URL of `category` (spot or linear)."""
        return f"ws://127.0.0.1:{self.port}/v5/public/{category}"

    # -- what happened ---------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every subscribe, unsubscribe and ping received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def subscribe_requests(self, category: str = "spot") -> list[Request]:
        """The subscribe and unsubscribe requests of `category`, in order."""
        return [r for r in self.requests if r.category == category and r.op != "ping"]

    def subscribed(self, category: str = "spot") -> set[str]:
        """Topics subscribed on the open connections of `category`."""
        with self._lock:
            clients = [c for c in self._clients.values() if c.category == category]
            return set().union(*(c.topics for c in clients))

    def connections(self, category: str | None = None) -> int:
        """How many connections are open now (of `category`, or of any)."""
        with self._lock:
            return sum(category in (None, c.category) for c in self._clients.values())

    @property
    def connections_opened(self) -> int:
        """How many connections were ever accepted."""
        with self._lock:
            return self._opened

    # -- commands --------------------------------------------------------------------------

    def push_kline(
        self,
        symbol: str,
        start_ms: int,
        open: str,
        high: str,
        low: str,
        close: str,
        volume: str,
        *,
        interval: str = "1",
        confirm: bool = True,
        category: str = "spot",
        ts_ms: int | None = None,
    ) -> int:
        """Push one kline of `kline.<interval>.<symbol>`; returns how many clients got it."""
        end_ms = start_ms + KLINE_INTERVAL_MS[interval] - 1
        stamp = ts_ms if ts_ms is not None else (end_ms if confirm else start_ms)
        entry = {
            "start": start_ms,
            "end": end_ms,
            "interval": interval,
            "open": open,
            "close": close,
            "high": high,
            "low": low,
            "volume": volume,
            "turnover": "0",
            "confirm": confirm,
            "timestamp": stamp,
        }
        topic = f"kline.{interval}.{symbol}"
        body = {"topic": topic, "type": "snapshot", "ts": stamp, "data": [entry]}
        return self.push(topic, body, category)

    def push_trades(
        self,
        symbol: str,
        trades: Sequence[tuple[int, str, str]],
        *,
        category: str = "spot",
        ts_ms: int | None = None,
    ) -> int:
        """Push `(time_ms, price, size)` trades (oldest first) on `publicTrade.<symbol>`."""
        data = [
            {
                "T": ts,
                "s": symbol,
                "S": "Buy",
                "v": size,
                "p": price,
                "L": "PlusTick",
                "i": str(uuid.uuid4()),
                "BT": False,
            }
            for ts, price, size in trades
        ]
        topic = f"publicTrade.{symbol}"
        stamp = ts_ms if ts_ms is not None else (trades[-1][0] if trades else 0)
        return self.push(
            topic, {"topic": topic, "type": "snapshot", "ts": stamp, "data": data}, category
        )

    def push(
        self, topic: str, message: dict[str, Any] | str | bytes, category: str = "spot"
    ) -> int:
        """Send `message` (an object, or raw text for malformed ones) to subscribers of `topic`."""
        text = message if isinstance(message, str | bytes) else orjson.dumps(message).decode()
        return self._call(self._push(topic, text, category))

    def drop_all(self) -> int:
        """Cut every open connection abruptly (no close frame); returns how many."""
        return self._call(self._drop_all())

    def stall(self) -> None:
        """Stop answering requests and pushing (requests are still logged)."""
        self._stalled = True

    def resume(self) -> None:
        """Answer and push again."""
        self._stalled = False

    def stop_websocket(self) -> int:
        """Refuse websocket handshakes and cut the open connections; REST keeps answering."""
        self._ws_stopped = True
        return self.drop_all()

    def start_websocket(self) -> None:
        """Accept websocket connections again."""
        self._ws_stopped = False

    # -- REST history ----------------------------------------------------------------------

    def add_klines(
        self,
        symbol: str,
        rows: Sequence[KlineRow],
        *,
        interval: str = "1",
        category: str = "spot",
    ) -> None:
        """Closed candles the kline route serves (any order; a start given twice is replaced)."""
        with self._lock:
            series = self._series.setdefault((category, symbol, interval), {})
            for row in rows:
                series[row[0]] = row

    def set_forming(
        self, symbol: str, row: KlineRow | None, *, interval: str = "1", category: str = "spot"
    ) -> None:
        """The candle still open, served as the newest row when the range covers its start."""
        with self._lock:
            if row is None:
                self._forming.pop((category, symbol, interval), None)
            else:
                self._forming[(category, symbol, interval)] = row

    def fail_rest(self, ret_code: int, ret_msg: str = "error", *, times: int = 1) -> None:
        """Answer the next `times` kline requests with HTTP 200 and this `retCode`."""
        with self._lock:
            self._rest_faults += [(200, ret_code, ret_msg)] * times

    def rate_limit_rest(self, *, times: int = 1, http_403: bool = False) -> None:
        """Answer the next `times` kline requests with `retCode` 10006 (or HTTP 403)."""
        fault = (403, 0, "access too frequent") if http_403 else (200, 10006, "Too many visits!")
        with self._lock:
            self._rest_faults += [fault] * times

    @property
    def rest_requests(self) -> list[dict[str, str]]:
        """The query of every kline request received, in order (a copy)."""
        with self._lock:
            return [dict(query) for query in self._rest_log]

    def _kline_reply(self, query: dict[str, str]) -> tuple[int, dict[str, Any] | str]:
        with self._lock:
            self._rest_log.append(query)
            if self._rest_faults:
                status, code, message = self._rest_faults.pop(0)
                if status != 200:
                    return status, message
                return 200, {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}}
            category = query.get("category", "linear")  # Bybit's default: why qkt always sends it
            symbol, interval = query.get("symbol", ""), query.get("interval", "")
            if not any(c == category and s == symbol for c, s, _ in self._series):
                return 200, _ret(10001, "Not supported symbols")
            if interval not in KLINE_INTERVAL_MS:
                return 200, _ret(10001, "Invalid period!")
            try:
                start = int(query.get("start", "0"))
                end = int(query.get("end", str(2**62)))
                limit = min(int(query.get("limit", "200")), 1000)
            except ValueError:
                return 200, _ret(10001, "params error")
            rows = dict(self._series.get((category, symbol, interval), {}))
            forming = self._forming.get((category, symbol, interval))
        if forming is not None:
            rows[forming[0]] = forming
        chosen = sorted((r for t, r in rows.items() if start <= t <= end), reverse=True)[:limit]
        listed = [[str(r[0]), *r[1:], "0"] for r in chosen]
        result = {"category": category, "symbol": symbol, "list": listed}
        return 200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                     "time": int(time.time() * 1000) + self.rest_clock_offset_ms}  # fmt: skip

    async def _process_request(
        self, connection: ServerConnection, request: HttpRequest
    ) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path == "/v5/market/kline":
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if self.rest_delay_s:
                await asyncio.sleep(self.rest_delay_s)
            status, body = self._kline_reply(query)
            if isinstance(body, str):
                return _http(status, body.encode(), "text/plain")
            return _http(status, orjson.dumps(body), "application/json")
        if self._ws_stopped:
            return _http(503, b"websocket stopped", "text/plain")
        return None

    # -- the server (runs on the fake's own loop) ------------------------------------------

    def _call(self, coro: Awaitable[T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(_as_coro(coro), self._loop)
        return future.result(timeout=10)

    async def _start(self) -> Server:
        return await serve(
            self._handle,
            "127.0.0.1",
            0,
            ping_interval=None,
            process_request=self._process_request,
        )

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        category = ws.request.path.rstrip("/").rsplit("/", 1)[-1] if ws.request else ""
        if category not in CATEGORIES:
            await ws.close(1008, "unknown path")
            return
        with self._lock:
            self._opened += 1
            client = _Client(self._opened, category, ws, uuid.uuid4().hex[:20])
            self._clients[client.number] = client
        try:
            async for frame in ws:
                await self._answer(client, frame)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._clients.pop(client.number, None)

    async def _answer(self, client: _Client, frame: str | bytes) -> None:
        try:
            body = orjson.loads(frame)
            op = str(body["op"])
            args = tuple(str(arg) for arg in body.get("args", ()))
            req_id = None if body.get("req_id") is None else str(body["req_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return  # Bybit ignores what it cannot read
        with self._lock:
            self._requests.append(Request(client.number, client.category, op, args, req_id))
        if self._stalled:
            return
        if op == "ping":
            await self._pong(client, req_id)
            return
        success, message = self._apply(client, op, args)
        ack: dict[str, Any] = {"success": success, "ret_msg": message, "conn_id": client.conn_id}
        if req_id is not None:
            ack["req_id"] = req_id
        ack["op"] = op
        await client.ws.send(orjson.dumps(ack).decode())

    def _apply(self, client: _Client, op: str, args: tuple[str, ...]) -> tuple[bool, str]:
        if op not in ("subscribe", "unsubscribe"):
            return False, f"error:unknown op {op}"
        if client.category == "spot" and len(args) > SPOT_MAX_ARGS:
            return False, f"error:args count {len(args)} exceeds the limit of {SPOT_MAX_ARGS}"
        for topic in args:
            if not _TOPIC.fullmatch(topic):
                return False, f"error:handler not found,topic:{topic}"
        with self._lock:
            if op == "subscribe":
                for topic in args:
                    if topic in client.topics:
                        return False, f"error:already subscribed,topic:{topic}"
                client.topics.update(args)
            else:
                client.topics.difference_update(args)
        return True, ""

    async def _pong(self, client: _Client, req_id: str | None) -> None:
        if client.category == "spot":
            pong: dict[str, Any] = {"success": True, "ret_msg": "pong", "conn_id": client.conn_id}
            if req_id is not None:
                pong["req_id"] = req_id
            pong["op"] = "ping"
        else:
            pong = {"op": "pong", "args": [str(time.time_ns() // 10**6)], "conn_id": client.conn_id}
        await client.ws.send(orjson.dumps(pong).decode())

    async def _push(self, topic: str, text: str | bytes, category: str) -> int:
        if self._stalled:
            return 0
        with self._lock:
            targets = [
                c for c in self._clients.values() if c.category == category and topic in c.topics
            ]
        sent = 0
        for client in targets:
            try:
                await client.ws.send(text)
                sent += 1
            except ConnectionClosed:
                pass
        return sent

    async def _drop_all(self) -> int:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.ws.transport.abort()
        return len(clients)


def walk_rows(
    start_ms: int, count: int, interval_ms: int = 60_000, seed: int = 0
) -> list[KlineRow]:
    """`count` consecutive plausible kline rows from `start_ms` (deterministic per seed)."""
    rng = random.Random(seed)
    price = Decimal("100.0")
    rows: list[KlineRow] = []
    for i in range(count):
        close = max(Decimal("1.0"), price + Decimal(rng.randint(-20, 20)) / 10)
        high = max(price, close) + Decimal(rng.randint(0, 5)) / 10
        low = min(price, close) - Decimal(rng.randint(0, 5)) / 10
        volume = Decimal(rng.randint(1, 500)) / 100
        rows.append((start_ms + i * interval_ms, str(price), str(high), str(low), str(close),
                     str(volume)))  # fmt: skip
        price = close
    return rows


def _ret(code: int, message: str) -> dict[str, Any]:
    return {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}}


def _http(status: int, body: bytes, content_type: str) -> Response:
    reasons = {200: "OK", 403: "Forbidden", 503: "Service Unavailable"}
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
    )
    return Response(status, reasons.get(status, "Error"), headers, body)


async def _as_coro(awaitable: Awaitable[T]) -> T:
    return await awaitable


@contextmanager
def fake_bybit() -> Iterator[FakeBybit]:
    """A started fake exchange, closed (connections cut, thread joined) on exit."""
    fake = FakeBybit()
    fake.start()
    try:
        yield fake
    finally:
        fake.close()


__all__ = ["CATEGORIES", "FakeBybit", "KlineRow", "Request", "fake_bybit", "walk_rows"]
