"""The bearer token check: every route but `/health` needs `Authorization: Bearer <token>`."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qkt.errors import UnauthorizedError

bearer = HTTPBearer(
    auto_error=False,
    description="The content of <state>/control.token (made fresh at each daemon start).",
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Raise UnauthorizedError unless the request carries the daemon's token."""
    expected: str = request.app.state.daemon.token
    given = credentials.credentials if credentials is not None else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise UnauthorizedError(
            "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the "
            "content of the state dir's control.token"
        )
