"""The control plane's routes (spec.md, "Control plane"); errors are raised, formatted in app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, WithJsonSchema

from qkt.control.auth import require_token
from qkt.control.schemas import (
    NAME_DESCRIPTION,
    NAME_REGEX,
    DeployRequest,
    Health,
    HubKey,
    ListEntry,
    NotifyChannel,
    NotifyTestResult,
    ShutdownAccepted,
    StopResult,
    WorkerStatus,
)
from qkt.httperrors import error_responses
from qkt.inputs import check_strategy_file
from qkt.money import plain
from qkt.records import to_json
from qkt.supervisor import operations
from qkt.supervisor.daemon import Daemon
from qkt.supervisor.deployments import Deployment, resolve_file
from qkt.supervisor.logs import follow, keep_matching, parse_since, read_tail_across

_DESCRIBED: Final[dict[int, str]] = {
    400: "Invalid name (`invalid_name`), or a request the daemon cannot act on.",
    401: "Missing or wrong bearer token.",
    404: "No such strategy, strategy file or alert channel.",
    409: "The name is in use, the strategy is busy, --speed/--seed differ from the daemon's, "
    "or --require-warm and the history is not there (`not_warm`).",
    411: "A chunked body: send it with a Content-Length.",
    413: "A body larger than 64 KiB (`body_too_large`).",
    422: "Invalid body or parameters (`invalid_request`), or a DSL error (`dsl_error`).",
    502: "The worker did not start.",
    503: "No free worker port, or the box is out of something (`out_of_resources`).",
}
_TEXT: Final = {"content": {"text/plain": {"schema": {"type": "string"}}}}
# What `parse_since` reads: an RFC 3339 time, epoch seconds or milliseconds, or an age.
_SINCE_SCHEMA: Final = {
    "description": "Lines at or after: an ISO 8601 time, epoch s or ms, or an age (90s, 10m).",
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": "^[0-9]{1,16}$"},
        {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?[smhd]$", "maxLength": 16},
    ],
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses (401 is always possible: the token).

    Each is the JSON envelope, also on a route whose success is text: `response_class=Response`
    there (no media type of its own) keeps FastAPI from filing the envelope under `text/plain`.
    """
    return error_responses(_DESCRIBED, sorted({401, *codes}))


Name = Annotated[
    str, Path(pattern=NAME_REGEX, description=NAME_DESCRIPTION, examples=["ema_cross"])
]


def daemon_of(request: Request) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


DaemonDep = Annotated[Daemon, Depends(daemon_of)]
public = APIRouter()
router = APIRouter(dependencies=[Depends(require_token)])


@public.get("/health", response_model=Health)
async def health(daemon: DaemonDep) -> dict[str, Any]:
    """The daemon is up; no token needed."""
    return to_json(daemon.health())


@router.post(
    "/deploy",
    status_code=201,
    response_model=ListEntry,
    responses=errors(400, 404, 409, 411, 413, 422, 502, 503),
)
async def deploy(body: DeployRequest, daemon: DaemonDep) -> dict[str, Any]:
    """Compile FILE and start it as NAME; answers once the worker is ready."""
    daemon.check_market(body.speed, body.seed)
    # A missing file is 404 before its stem is judged as a name: the file is what is wrong.
    file = resolve_file(body.file)
    check_strategy_file(file)
    deployment = Deployment.create(
        file,
        body.name,
        balance=plain(body.balance),
        fee_bps=plain(body.fee_bps),
        slippage_bps=plain(body.slippage_bps),
        sim=body.sim,
        limits=body.limit_flags(),
        leverage=body.leverage,
        margin=body.margin,
    )
    handle = await operations.deploy(
        daemon.registry,
        daemon.state,
        deployment,
        replace=body.replace,
        keep_state=body.keep_state,
        resume=body.resume,
        fresh=body.fresh,
        warm=body.require_warm,
    )
    return to_json(daemon.registry.entry(handle))


def _records(items: list[dict[str, Any]], model: type[BaseModel]) -> Response:
    """Records as JSON, as `model` would give them but without FastAPI checking each one
    against it (with a thousand strategies that check was most of a `qkt list`'s wait): the
    records are the schema (a test holds the models equal to them); a field a record leaves
    out while None is written as null, as the model writes it."""
    fields = model.model_fields.items()
    defaults = {name: field.default for name, field in fields if not field.is_required()}
    shaped = [{**defaults, **item} for item in items]
    return Response(orjson.dumps(shaped), media_type="application/json")


@router.get("/list", response_model=list[ListEntry], responses=errors())
async def list_strategies(daemon: DaemonDep) -> Response:
    """Every deployed strategy, sorted by name (the daemon's own state: no worker is asked;
    trade counts come with the workers' heartbeats)."""
    entries = [to_json(daemon.registry.entry(h)) for h in daemon.registry.handles()]
    return _records(entries, ListEntry)


@router.get("/status", response_model=list[WorkerStatus], responses=errors())
async def status_all(daemon: DaemonDep) -> list[dict[str, Any]]:
    """Every worker's `/status`, as last heard (refreshed in the background while asked for);
    one that does not answer shows its state and an error."""
    return [to_json(item) for item in await daemon.registry.status_all()]


@router.get("/status/{name}", response_model=WorkerStatus, responses=errors(400, 404, 422))
async def status_one(name: Name, daemon: DaemonDep) -> dict[str, Any]:
    """That worker's `/status` (or the daemon's record of it if it has no process)."""
    return to_json(await daemon.registry.status_of(name))


@router.get(
    "/logs/{name}",
    response_class=Response,
    responses={200: {"description": "The log's lines.", **_TEXT}, **errors(400, 404, 422)},
)
async def logs(
    name: Name,
    daemon: DaemonDep,
    lines: Annotated[int, Query(ge=0, le=100_000, description="Last N lines.")] = 200,
    since: Annotated[
        str | None,
        Query(),
        WithJsonSchema(_SINCE_SCHEMA),
    ] = None,
    follow_: Annotated[bool, Query(alias="follow", description="Stream new lines.")] = False,
    grep: Annotated[
        str | None,
        Query(max_length=1000),
        WithJsonSchema(
            {"type": "string", "maxLength": 1000, "description": "Only lines containing this."}
        ),
    ] = None,
) -> Response:
    """The strategy's log (`daemon`: the daemon's own), rotated files included: the last
    lines, then with follow=true whatever is appended."""
    if name == "daemon":
        path = daemon.state.daemon_log
    else:
        path = daemon.registry.log_file(name)
    since_ts = parse_since(since) if since is not None else None
    text, offset = read_tail_across(path, lines, since_ts, grep)
    head = "".join(line + "\n" for line in text)
    if not follow_:
        return PlainTextResponse(head)

    async def stream() -> AsyncIterator[bytes]:
        yield head.encode()
        async for chunk in follow(path, offset, lambda: daemon.stopping):
            kept = keep_matching(chunk, grep)
            if kept:
                yield kept

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")


@router.post("/stop/{name}", response_model=StopResult, responses=errors(400, 404, 409, 422, 503))
async def stop(
    name: Name,
    daemon: DaemonDep,
    flatten: Annotated[
        bool, Query(description="Close every position at market first (the worker's /stop).")
    ] = False,
    timeout: Annotated[
        int | None,
        Query(ge=0, le=3_600_000),
        # Optional means left out: a query string cannot carry the `null` FastAPI would allow.
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": 0,
                "maximum": 3_600_000,
                "description": "Grace before SIGKILL, in ms (default 5000).",
            }
        ),
    ] = None,
) -> dict[str, Any]:
    """Graceful stop (SIGTERM, or the worker's POST /stop to flatten), then SIGKILL."""
    return to_json(await daemon.registry.stop(name, flatten=flatten, timeout_ms=timeout))


@router.post("/shutdown", status_code=202, response_model=ShutdownAccepted, responses=errors())
async def shutdown(daemon: DaemonDep) -> dict[str, Any]:
    """Stop every worker, then exit."""
    daemon.request_shutdown("POST /shutdown")
    return {"status": "shutting_down"}


@router.get("/hub", response_model=list[HubKey], responses=errors())
async def hub(daemon: DaemonDep) -> list[dict[str, Any]]:
    """The hub's keys: subscribers, candles published, feed state."""
    return [to_json(key) for key in daemon.hub_keys()]


@router.get("/notify", response_model=list[NotifyChannel], responses=errors())
async def notify(daemon: DaemonDep) -> list[dict[str, Any]]:
    """Each alert channel's health: sent, failed, dropped, pending, state (no secrets)."""
    return [to_json(channel) for channel in daemon.notify_channels()]


@router.post("/notify/test", response_model=list[NotifyTestResult], responses=errors(404, 422))
async def notify_test(
    daemon: DaemonDep,
    channel: Annotated[
        str | None,
        Query(max_length=200, description="One channel (default: every one)."),
        WithJsonSchema({"type": "string", "maxLength": 200}),
    ] = None,
) -> list[dict[str, Any]]:
    """Send one test message through each alert channel; what each answered."""
    return [to_json(result) for result in await daemon.notify_test(channel)]


@public.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition.", **_TEXT}},
)
async def metrics(request: Request, daemon: DaemonDep) -> Response:
    """Prometheus text, no token needed (the control plane is loopback only): strategies by
    state, each strategy's equity, PnL, trades, state and feed freshness, the hub's keys."""
    await daemon.registry.current_figures()  # from the workers' heartbeat files
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
