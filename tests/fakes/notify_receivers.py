"""A local HTTP receiver for webhook, Slack and Discord posts (real socket on 127.0.0.1).

It answers as the services do: a webhook path `/hook/...` with 200 `{}`, a Slack path
`/slack/...` with 200 `ok`, a Discord path `/discord/...` with 204. On demand it answers 500s,
429 with `Retry-After` (and Discord's JSON `retry_after`), or hangs until released.

    with notify_receiver() as rx:
        url = rx.url("/hook/a")
        rx.fail_next(3)                 # the next 3 posts get 500 (path=...: to that path only)
        rx.rate_limit_next(1, 0.2)      # the next post gets 429, Retry-After: 0.2
        rx.hang(); rx.release()         # posts hang (until released); then answer normally
        rx.always(500); rx.always(None) # every post fails until told otherwise
        rx.posts("/hook/a")             # what arrived (successful answers only)
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

HANG_LIMIT_S = 60.0  # a hung request answers at the latest after this (or at release/close)


@dataclass(frozen=True, slots=True)
class Post:
    """One request the receiver accepted."""

    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return orjson.loads(self.raw)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


class LoopbackServer:
    """A threaded stdlib HTTP server on 127.0.0.1:0; POSTs go to `answer(path, headers, raw)`."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                reply = owner.answer(self.path, dict(self.headers.items()), raw)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers:
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (a hung request timed out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class NotifyReceiver(LoopbackServer):
    """Records webhook/Slack/Discord posts; scripted failures."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._posts: list[Post] = []
        self._script: deque[tuple[str | None, Reply]] = deque()  # (only for this path, reply)
        self._always: int | None = None
        self._released = threading.Event()
        self._released.set()
        self.requests = 0  # every request, answered well or not

    def url(self, path: str) -> str:
        return self.base_url() + path

    def fail_next(self, n: int, status: int = 500, path: str | None = None) -> None:
        with self._lock:
            self._script.extend((path, Reply(status, b"boom")) for _ in range(n))

    def rate_limit_next(self, n: int, retry_after: float, path: str | None = None) -> None:
        body = orjson.dumps({"message": "You are being rate limited.", "retry_after": retry_after})
        reply = Reply(429, body, (("Retry-After", f"{retry_after:g}"),))
        with self._lock:
            self._script.extend((path, reply) for _ in range(n))

    def always(self, status: int | None) -> None:
        with self._lock:
            self._always = status

    def hang(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def posts(self, path: str | None = None) -> list[Post]:
        with self._lock:
            return [p for p in self._posts if path is None or p.path == path]

    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        with self._lock:
            self.requests += 1
        if not self._released.is_set():
            # A black hole: the request is never processed, even once released (the client
            # timed out long ago; recording it would count a message the sender never saw land).
            self._released.wait(HANG_LIMIT_S)
            return Reply(504)
        with self._lock:
            for entry in self._script:
                if entry[0] in (None, path):
                    self._script.remove(entry)
                    return entry[1]
            if self._always is not None:
                return Reply(self._always, b"down")
            self._posts.append(Post(path, headers, raw))
        if path.startswith("/slack/"):
            return Reply(200, b"ok", (("Content-Type", "text/html"),))
        if path.startswith("/discord/"):
            return Reply(204)
        return Reply(200, b"{}", (("Content-Type", "application/json"),))

    def close(self) -> None:
        self._released.set()
        super().close()


@contextmanager
def notify_receiver() -> Iterator[NotifyReceiver]:
    receiver = NotifyReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.close()
