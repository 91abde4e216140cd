"""`fast_paths(app)`: the two requests the daemon sends every worker, answered in front of the
status app.

The daemon asks each worker `GET /health` when it starts and `GET /status` (with its token) to
keep its figures, about once a minute. Through FastAPI each runs starlette's middleware and
router, FastAPI's dependency solver and pydantic's serializer: a long path every worker runs,
and each run turns the shared pages it touches into private copies of that worker. Answered
here, they cost a fraction of that (docs/performance.md, "where the memory goes") and less CPU.
The answers are the app's own: `/health`'s body, and `/status`'s record serialized as the app
serializes it. Anything else, a `/status` without the right token included (its 401 comes from
the app), goes to the app, whose routes also still document both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from qkt.records import to_json
from qkt.worker.bearer import bearer_problem

HEALTH: Final = b'{"status":"ok"}'
_JSON: Final = (b"content-type", b"application/json")


def fast_paths(app: FastAPI) -> ASGIApp:
    """`app`, with `GET /health` and an authorized `GET /status` answered before it."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            if path == "/health":
                await _answer(send, HEALTH)
                return
            if path == "/status" and _authorized(scope, app.state.token_file):
                try:
                    body = orjson.dumps(to_json(app.state.view.status()))
                except Exception:  # the app's error handlers answer it, as for any route
                    body = b""
                if body:
                    await _answer(send, body)
                    return
        await app(scope, receive, send)

    return serve


async def _answer(send: Send, body: bytes) -> None:
    headers = [(b"content-length", b"%d" % len(body)), _JSON]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _authorized(scope: Scope, token_file: Path | None) -> bool:
    """The request carries the daemon's bearer token (or this worker has none, `qkt run`):
    the app's own check (`bearer_problem`). False whenever the app might say anything else."""
    given = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() != b"bearer":
                return False
            given = credentials.decode("latin-1")
            break
    return bearer_problem(token_file, given) is None
