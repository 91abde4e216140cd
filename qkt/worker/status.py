"""The worker's status port: `create_status_app(view, ring, ...)` -> a FastAPI app (spec.md).

No globals: what the routes read lives on `app.state`. Every route is `async`, so it runs on the
worker's own event loop between two candles (a candle is processed without awaiting), never on
a thread: `/trades` reads the journal's connection without locks and never sees half a candle.
Errors leave as `{"error": {"code", "message"}}` (`qkt.httperrors`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Final, Protocol

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import WithJsonSchema

from qkt import __version__
from qkt.errors import UnauthorizedError
from qkt.httperrors import error_responses, install_error_handlers
from qkt.records import to_json
from qkt.worker import metrics
from qkt.worker.bearer import bearer_problem
from qkt.worker.events import EventRing, WorkerEvent
from qkt.worker.haltroutes import install_halt_routes
from qkt.worker.record import WorkerStatus
from qkt.worker.schemas import (
    HealthOut,
    LogsOut,
    StatusOut,
    StopOut,
    TradesOut,
)

log = logging.getLogger(__name__)

# Declared in the schema as the routes' security; the check itself is `_check_token`, since
# only a worker under a daemon (with a token file) needs one.
_bearer = HTTPBearer(
    auto_error=False,
    description="Under a daemon: the content of its state dir's control.token.",
)


async def _guard(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> None:
    """The bearer token of the daemon, if this worker has one (the routes' dependency)."""
    _check_token(request.app.state.token_file, credentials)


# Every route but /health: the token before anything is read or streamed.
GUARDED: Final = [Depends(_guard)]


HEARTBEAT_S: Final = 15.0  # an SSE comment this often, so a vanished client is noticed
DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 1000
MAX_ID: Final = 2**63 - 1  # ids are SQLite INTEGERs: a larger one cannot even be compared
_DESCRIBED: Final[dict[int, str]] = {
    401: "Missing or wrong bearer token.",
    422: "Invalid query parameters or headers.",
}


def _id_schema(description: str) -> WithJsonSchema:
    """An optional id parameter: left out when not wanted, never `null` (a query string or a
    header cannot carry one, though FastAPI would declare `anyOf [integer, null]`)."""
    schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID, "description": description}
    return WithJsonSchema(schema)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses (the JSON envelope)."""
    return error_responses(_DESCRIBED, codes)


class WorkerView(Protocol):
    """What the status routes need from the running worker."""

    def status(self) -> WorkerStatus:
        """The `/status` record."""
        ...

    def trades(self, *, after: int | None, limit: int) -> list[dict[str, Any]]:
        """Fills from the journal, oldest first."""
        ...

    def trade_total(self) -> int:
        """How many fills the journal holds."""
        ...

    def request_stop(self, flatten: bool) -> None:
        """Begin a graceful stop."""
        ...


def create_status_app(
    view: WorkerView,
    ring: EventRing,
    *,
    token_file: Path | None = None,
    heartbeat_s: float = HEARTBEAT_S,
) -> FastAPI:
    """The status app of one worker. With `token_file` (under a daemon) every route but `/health`
    needs its bearer token: balances, positions, trades and file paths are nobody else's, and
    `--bind-workers 0.0.0.0` puts the port on the network. `qkt run` (no token file) is open."""
    return bind_status_app(build_status_app(heartbeat_s=heartbeat_s), view, ring, token_file)


def bind_status_app(
    app: FastAPI, view: WorkerView, ring: EventRing, token_file: Path | None
) -> FastAPI:
    """Give an app from `build_status_app` its worker: everything a route reads is here."""
    app.state.view = view
    app.state.ring = ring
    app.state.token_file = token_file
    app.state.registry = metrics.make_registry(view.status)
    return app


def build_status_app(*, heartbeat_s: float = HEARTBEAT_S) -> FastAPI:
    """The routes, their schemas and the middleware, without a worker (`bind_status_app`).

    Built apart so that the fork server can build it once before it forks: the few thousand
    objects of an app are then shared by every worker instead of built (and dirtied) in each.
    """
    app = FastAPI(
        title="qkt worker",
        version=__version__,
        description="One strategy's status, events, trades and stop.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the token like every route but /health
    )
    install_error_handlers(app, log=log, log_hint="the strategy's log")

    @app.get("/health", response_model=HealthOut)
    async def health() -> dict[str, str]:
        """Liveness: answers while the worker's loop runs."""
        return {"status": "ok"}

    @app.get("/status", response_model=StatusOut, responses=errors(401), dependencies=GUARDED)
    async def status(request: Request) -> Response:
        """Account, positions, trades and health of the strategy, now."""
        state_view: WorkerView = request.app.state.view
        # The record is StatusOut field for field: serialized as it is, not validated again
        # through the model (the schema still documents it).
        body = orjson.dumps(to_json(state_view.status()))
        return Response(body, media_type="application/json")

    @app.get("/logs", response_model=LogsOut, responses=errors(401, 422), dependencies=GUARDED)
    async def logs(
        request: Request,
        since: Annotated[
            int | None, Query(ge=0, le=MAX_ID), _id_schema("events after this id")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> dict[str, Any]:
        """Recent events from the in-memory ring, oldest first (without `since`: the latest)."""
        events_ring: EventRing = request.app.state.ring
        found = events_ring.latest(limit) if since is None else events_ring.since(since, limit)
        last = found[-1].id if found else (since or 0)
        return {"events": [event.to_json() for event in found], "last_id": last}

    @app.get("/trades", response_model=TradesOut, responses=errors(401, 422), dependencies=GUARDED)
    async def trades(
        request: Request,
        after: Annotated[
            int | None, Query(ge=0, le=MAX_ID), _id_schema("fills with a larger id")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> dict[str, Any]:
        """Fills from the journal, oldest first (without `after`: the latest `limit`)."""
        journal_view: WorkerView = request.app.state.view
        found = journal_view.trades(after=after, limit=limit)
        return {
            "trades": found,
            "total": journal_view.trade_total(),
            "last_id": found[-1]["id"] if found else after,
        }

    @app.get(
        "/events",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
            **errors(401, 422),
        },
        dependencies=GUARDED,
    )
    async def events(
        request: Request,
        last_event_id: Annotated[
            int | None, Header(ge=0, le=MAX_ID), _id_schema("resume after this event id")
        ] = None,
    ) -> StreamingResponse:
        """Server-Sent Events, live: `event: trade|signal|order|log|candle`, `data: <json>`,
        `id:`; a `Last-Event-ID` header resumes from the ring."""
        events_ring: EventRing = request.app.state.ring
        return StreamingResponse(
            _sse(events_ring, last_event_id, heartbeat_s),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post(
        "/stop",
        status_code=202,
        response_model=StopOut,
        responses=errors(401, 422),
        dependencies=GUARDED,
    )
    async def stop(request: Request, flatten: bool = False) -> dict[str, Any]:
        """Graceful stop; with `flatten`, close every position at market first."""
        stop_view: WorkerView = request.app.state.view
        stop_view.request_stop(flatten)
        return {"status": "stopping", "flatten": flatten}

    install_halt_routes(app, _check_token)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            **errors(401),
        },
        dependencies=GUARDED,
    )
    async def prometheus(request: Request) -> Response:
        """Trades, equity, PnL, positions and candles seen, in Prometheus text format."""
        body = metrics.render(request.app.state.registry)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    @app.get("/openapi.json", include_in_schema=False, dependencies=GUARDED)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    # Starlette builds it on the first request; built here, it is built before the fork.
    app.middleware_stack = app.build_middleware_stack()
    return app


async def _sse(ring: EventRing, last_id: int | None, heartbeat_s: float) -> AsyncIterator[bytes]:
    # Subscribe before reading the backlog, so nothing published in between is missed; the ids
    # remove what both would deliver.
    subscription = ring.subscribe()
    try:
        yield b": connected\n\n"
        sent = 0
        if last_id is not None:
            sent = last_id
            for past in ring.since(last_id):
                yield _frame(past)
                sent = past.id
        dropped = 0
        while True:
            event = await subscription.next_event(timeout=heartbeat_s)
            if subscription.dropped != dropped:
                yield f": {subscription.dropped - dropped} event(s) dropped\n\n".encode()
                dropped = subscription.dropped
            if event is None:
                if subscription.closed:
                    return
                yield b": keep-alive\n\n"
            elif event.id > sent:
                yield _frame(event)
                sent = event.id
    finally:
        subscription.close()


def _frame(event: WorkerEvent) -> bytes:
    data = orjson.dumps(event.to_json())
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.kind.value.encode(), data)


def _check_token(token_file: Path | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    problem = bearer_problem(token_file, None if credentials is None else credentials.credentials)
    if problem is not None:
        raise UnauthorizedError(problem)
