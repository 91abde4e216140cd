"""create_app(daemon): the control plane's FastAPI app; every error leaves as one JSON envelope."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from fastapi import Depends, FastAPI

from qkt import __version__
from qkt.control import routes
from qkt.control.auth import require_token
from qkt.control.metrics import metrics_registry
from qkt.errors import InvalidNameError, QktError
from qkt.httperrors import install_error_handlers
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

    install_error_handlers(app, log=log, log_hint="logs/daemon.log", refine_validation=_name_error)
    return app


def _name_error(
    items: Sequence[Mapping[str, Any]], problems: list[dict[str, Any]]
) -> QktError | None:
    """spec.md: an invalid name is a 400 `invalid_name`, whether the schema's pattern or the
    daemon saw it, not FastAPI's generic 422."""
    for item in items:
        if tuple(item.get("loc", ()))[-2:] in _NAME_LOCATIONS:
            try:
                check_name(str(item.get("input", "")))
            except InvalidNameError as error:
                return InvalidNameError(error.message, errors=problems)
    return None
