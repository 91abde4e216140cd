"""A fake Telegram Bot API on 127.0.0.1: `sendMessage`, `getUpdates` with queued updates, and
429 answers carrying `parameters.retry_after`, in the Bot API's JSON shapes.

    with fake_telegram("123:abc") as tg:
        api_url = tg.base_url()               # the channel's `api_url`
        tg.push_message(chat_id=42, text="/status")
        tg.rate_limit_next("sendMessage", 1, retry_after=3)
        tg.sent(chat_id="42")                 # sendMessage bodies received
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from tests.fakes.notify_receivers import LoopbackServer, Reply

LONG_POLL_CAP_S = 2.0  # the fake holds an empty getUpdates at most this long


def _json(status: int, value: Any) -> Reply:
    return Reply(status, orjson.dumps(value), (("Content-Type", "application/json"),))


class FakeTelegram(LoopbackServer):
    """The Bot API for one bot token."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self._cond = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1000
        self._next_message_id = 1
        self._sent: list[dict[str, Any]] = []
        self._limits: dict[str, deque[int]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (method, body) of every call

    def push_message(self, chat_id: int | str, text: str) -> int:
        """Queue an incoming message from `chat_id`; its update_id."""
        with self._cond:
            update_id = self._next_update_id
            self._next_update_id += 1
            message = {
                "message_id": self._next_message_id,
                "date": int(time.time()),
                "chat": {"id": int(chat_id), "type": "private"},
                "from": {"id": int(chat_id), "is_bot": False, "first_name": "op"},
                "text": text,
            }
            self._next_message_id += 1
            self._updates.append({"update_id": update_id, "message": message})
            self._cond.notify_all()
            return update_id

    def rate_limit_next(self, method: str, n: int, retry_after: int) -> None:
        with self._cond:
            self._limits.setdefault(method, deque()).extend([retry_after] * n)

    def sent(self, chat_id: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [s for s in self._sent if chat_id is None or str(s["chat_id"]) == chat_id]

    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        prefix, _, method = path.lstrip("/").partition("/")
        if prefix != f"bot{self.token}":
            return _json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return _json(400, {"ok": False, "error_code": 400, "description": "Bad Request"})
        with self._cond:
            self.calls.append((method, body))
            limits = self._limits.get(method)
            if limits:
                wait = limits.popleft()
                return _json(
                    429,
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {wait}",
                        "parameters": {"retry_after": wait},
                    },
                )
        if method == "sendMessage":
            return self._send_message(body)
        if method == "getUpdates":
            return self._get_updates(body)
        return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def _send_message(self, body: dict[str, Any]) -> Reply:
        text = body.get("text")
        if "chat_id" not in body or not isinstance(text, str) or not 1 <= len(text) <= 4096:
            return _json(
                400, {"ok": False, "error_code": 400, "description": "Bad Request: bad message"}
            )
        with self._cond:
            self._sent.append(body)
            message_id = self._next_message_id
            self._next_message_id += 1
        result = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": body["chat_id"], "type": "private"},
            "text": text,
        }
        return _json(200, {"ok": True, "result": result})

    def _get_updates(self, body: dict[str, Any]) -> Reply:
        offset = body.get("offset")
        deadline = time.monotonic() + min(float(body.get("timeout", 0)), LONG_POLL_CAP_S)
        with self._cond:
            if isinstance(offset, int):
                # As the real API: an offset confirms (and forgets) every earlier update.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            result = list(self._updates[:100])
        return _json(200, {"ok": True, "result": result})


@contextmanager
def fake_telegram(token: str) -> Iterator[FakeTelegram]:
    fake = FakeTelegram(token)
    fake.start()
    try:
        yield fake
    finally:
        fake.close()
