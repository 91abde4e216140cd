"""create_app(daemon): the control plane's FastAPI app; every error leaves as one JSON envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from qkt import __version__
from qkt.control import riskroutes, routes, verbs
from qkt.control.apidocs import render_page
from qkt.control.auth import require_token
from qkt.control.guard import RequestGuard
from qkt.control.metrics import Exposition
from qkt.control.riskroutes import RISK_INPUTS
from qkt.errors import QktError
from qkt.httperrors import install_error_handlers
from qkt.inputs import parse_balance, parse_bps, parse_timeout_ms
from qkt.paths import check_name
from qkt.supervisor.daemon import Daemon

log = logging.getLogger(__name__)


def create_app(daemon: Daemon) -> FastAPI:
    """The control plane of `daemon` (kept on `app.state`: no globals)."""
    app = FastAPI(
        title="qkt control plane",
        version=__version__,
        summary="Deploy, list, inspect and stop the strategies of one qkt daemon.",
        openapi_url=None,  # served below, behind the token like every route but /health
        docs_url=None,
        redoc_url=None,
        # A path with a trailing slash is a 404 envelope like any unknown path, not a 307 to
        # somewhere else (`/status/..%2f` was redirected to `/status/..`).
        redirect_slashes=False,
    )
    app.state.daemon = daemon
    app.state.metrics = Exposition(daemon)
    app.include_router(routes.public)
    app.include_router(routes.router)
    app.include_router(verbs.router)
    app.include_router(riskroutes.router)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs() -> str:
        """The API as one offline HTML page (no token: it holds no state, only the schema)."""
        return render_page(app.openapi())

    install_error_handlers(app, log=log, log_hint="logs/daemon.log", refine_validation=_input_error)
    # The token and the body's size, before any body is read or parsed (401 before 422).
    app.add_middleware(RequestGuard, token=lambda: daemon.token)
    return app


def _input_error(
    items: Sequence[Mapping[str, Any]], problems: list[dict[str, Any]]
) -> QktError | None:
    """The parser's own error for an input the schema refused (`qkt.inputs`, `check_name`), so
    the API and the CLI answer a mistake with the same code and message: an invalid name is a
    400 `invalid_name` (spec.md), a bad balance, fee, slippage or timeout a 422
    `invalid_request` naming the input."""
    for item in items:
        parse = _PARSERS.get(tuple(item.get("loc", ()))[-2:])
        if parse is None:
            continue
        try:
            parse(item.get("input"))
        except QktError as error:
            return type(error)(error.message, errors=problems)
    return None


def _name(value: object) -> object:
    return check_name(str(value if value is not None else ""))


_PARSERS: Final[dict[tuple[Any, ...], Callable[[object], object]]] = {
    ("path", "name"): _name,
    ("body", "name"): _name,
    ("body", "balance"): parse_balance,
    ("body", "fee_bps"): lambda value: parse_bps(value, "fee_bps"),
    ("body", "slippage_bps"): lambda value: parse_bps(value, "slippage_bps"),
    ("query", "timeout"): parse_timeout_ms,
    **RISK_INPUTS,
}
