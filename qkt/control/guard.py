"""RequestGuard: the token and the body's size are checked before a byte of the body is read.

FastAPI reads and parses a request's body before it runs the token dependency: an unauthenticated
300 MB `POST /deploy` was read whole (RSS 113 -> 966 MB), and a malformed small body got 422
before 401. This ASGI middleware sits in front of the app: every path but the public ones needs
the bearer token from the headers alone (401), a body larger than `max_body` is refused by its
`Content-Length` (413), and a chunked body, whose size is not known before it is read, is
refused (411). The server reads no body that was not let through.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qkt.errors import QktError, UnauthorizedError, UserError
from qkt.httperrors import envelope

MAX_BODY: Final = 64 * 1024  # a deploy request is a path and a few numbers
# No token: liveness, the Prometheus scrape (a token changes at every start) and the API page.
PUBLIC: Final = frozenset({"/health", "/metrics", "/docs"})


class BodyTooLargeError(UserError):
    code = "body_too_large"
    http_status = 413


class LengthRequiredError(UserError):
    code = "length_required"
    http_status = 411


class RequestGuard:
    """Checks the bearer token (from the headers) and caps the body, before the app runs."""

    def __init__(self, app: ASGIApp, token: Callable[[], str], *, max_body: int = MAX_BODY) -> None:
        self._app = app
        self._token = token
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        refusal = self._refusal(scope["path"], headers)
        if refusal is not None:
            await envelope(refusal)(scope, _no_body, send)
            return
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            # `/status/..%2f` is the name `..` (400 invalid_name), never a 307 to elsewhere.
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self._app(scope, receive, send)

    def _refusal(self, path: str, headers: dict[bytes, bytes]) -> QktError | None:
        if path not in PUBLIC and not self._authorized(headers.get(b"authorization", b"")):
            return UnauthorizedError(
                "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the "
                "content of the state dir's control.token"
            )
        if b"transfer-encoding" in headers:
            # A chunked body has no size to check before it is read: ask for one.
            return LengthRequiredError("send the body with a Content-Length, not chunked")
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self._max_body:
            return BodyTooLargeError(f"request body larger than {self._max_body} bytes")
        return None

    def _authorized(self, header: bytes) -> bool:
        expected = self._token().encode()
        scheme, _, given = header.partition(b" ")
        return (
            bool(expected)
            and scheme.lower() == b"bearer"
            and hmac.compare_digest(given.strip(), expected)
        )


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
