"""One mapping of failures to HTTP answers for every qkt server (control plane and workers).

Whatever fails — a QktError, FastAPI's request validation, Starlette's 404/405, a bug — the
answer is `{"error": {"code", "message", ...details}}` with a fitting status, and a bug's
traceback goes to the server's log. `ErrorEnvelope` and `error_responses` declare exactly that in
the OpenAPI schema (a route whose success is text still fails in JSON).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from qkt.errors import InternalError, QktError

# Given the validation problems (FastAPI's items, and the same as `[{"loc", "msg"}]`), a server
# may answer with its own error instead of the generic 422 (the daemon: a bad name is a 400).
ValidationRefiner = Callable[[Sequence[Mapping[str, Any]], list[dict[str, Any]]], QktError | None]


class ErrorBody(BaseModel):
    """`{"code": "<snake_case>", "message": "<human sentence>", ...details}`.

    Details by code: `invalid_request` has `errors` (`[{"loc", "msg"}]`); `dsl_error` has `file`,
    `line`, `col` (the first error), `errors` (every `file:line:col: message`) and `rendered`
    (every error with its source line and a caret, then `N errors`).
    """

    model_config = ConfigDict(extra="allow")

    code: str = Field(pattern="^[a-z0-9_]+$", examples=["not_found"])
    message: str


class ErrorEnvelope(BaseModel):
    """Every error answer: `{"error": {"code", "message", ...}}`."""

    error: ErrorBody


def error_responses(
    descriptions: Mapping[int, str], codes: Sequence[int]
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each the JSON envelope."""
    return {code: {"model": ErrorEnvelope, "description": descriptions[code]} for code in codes}


def envelope(error: QktError) -> JSONResponse:
    """The answer for `error`: its status and `error.to_json()` (a 401 names its scheme)."""
    headers = {"WWW-Authenticate": "Bearer"} if error.http_status == 401 else None
    return JSONResponse(error.to_json(), status_code=error.http_status, headers=headers)


def install_error_handlers(
    app: FastAPI,
    *,
    log: logging.Logger,
    log_hint: str,
    refine_validation: ValidationRefiner | None = None,
) -> None:
    """Make every failure of `app` leave as the envelope; `log_hint` says where a bug's
    traceback went (e.g. `logs/daemon.log`)."""

    async def qkt_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, QktError)
        return envelope(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        items = list(exc.errors())
        problems = [
            {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", ""))}
            for item in items
        ]
        refined = refine_validation(items, problems) if refine_validation else None
        if refined is not None:
            return envelope(refined)
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] or first["loc"]) or "request"
        message = f"{where}: {first['msg']}"
        body = {"error": {"code": "invalid_request", "message": message, "errors": problems}}
        return JSONResponse(body, status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
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

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return envelope(InternalError(f"internal error: {type(exc).__name__} (see {log_hint})"))

    app.add_exception_handler(QktError, qkt_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
