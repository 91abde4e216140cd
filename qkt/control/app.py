"""create_app(daemon): the control plane's FastAPI app; every error leaves as one JSON envelope."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, Final

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qkt import __version__
from qkt.control import routes
from qkt.control.auth import require_token
from qkt.control.metrics import metrics_registry
from qkt.dsl import CompileError
from qkt.errors import InternalError, InvalidNameError, QktError
from qkt.paths import check_name
from qkt.supervisor.daemon import Daemon

log = logging.getLogger(__name__)

_NAME_LOCATIONS: Final = {("path", "name"), ("body", "name")}


def create_app(daemon: Daemon) -> FastAPI:
    """The control plane of `daemon` (kept on `app.state`: no globals)."""
    app = FastAPI(
        title="qkt control plane",
        version=__version__,
        summary="Deploy, list, inspect and stop the strategies of one qkt daemon.",
        openapi_url=None,  # served below, behind the token like every route but /health
        docs_url=None,
        redoc_url=None,
    )
    app.state.daemon = daemon
    app.state.metrics = metrics_registry(daemon)
    app.include_router(routes.public)
    app.include_router(routes.router)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    app.add_exception_handler(QktError, _qkt_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


def envelope(error: QktError) -> JSONResponse:
    """The JSON answer for `error`: its status and `{"error": {"code", "message", ...}}`."""
    headers = {"WWW-Authenticate": "Bearer"} if error.http_status == 401 else None
    body = error.to_json()
    if isinstance(error, CompileError):
        # Every error with its source line and caret, then `N errors` (as `qkt check` prints
        # them): the daemon has the source it compiled, so `qkt deploy` can show them all.
        body["error"]["rendered"] = error.render()
    return JSONResponse(body, status_code=error.http_status, headers=headers)


async def _qkt_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QktError)
    return envelope(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 `invalid_request` with every problem; a bad strategy name is 400 `invalid_name`."""
    assert isinstance(exc, RequestValidationError)
    items = list(exc.errors())
    problems = [
        {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", ""))}
        for item in items
    ]
    for item in items:
        # spec.md: an invalid name is a 400, whether the schema's pattern or the daemon saw it.
        if tuple(item.get("loc", ()))[-2:] in _NAME_LOCATIONS:
            try:
                check_name(str(item.get("input", "")))
            except InvalidNameError as error:
                return envelope(InvalidNameError(error.message, errors=problems))
    first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] or first["loc"]) or "request"
    body = {
        "error": {
            "code": "invalid_request",
            "message": f"{where}: {first['msg']}",
            "errors": problems,
        }
    }
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "error"
    code = re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
    message = exc.detail if isinstance(exc.detail, str) else phrase
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path} (see GET /openapi.json)"
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return envelope(InternalError(f"internal error: {type(exc).__name__} (see logs/daemon.log)"))
