"""The worker's operator verbs: `POST /halt`, `POST /resume`, `POST /kill` (docs/risk.md).

Token-protected like `POST /stop`. Each runs on the worker's loop between two candles and saves
the engine's state before answering, so the halt survives a restart of the worker or of the
daemon. A `resume` of a strategy that is not halted is a 409 `not_halted` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final, Protocol

from fastapi import Depends, FastAPI, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qkt.engine import HaltKind
from qkt.records import to_json
from qkt.worker.record import HaltOutcome
from qkt.worker.schemas import HaltOutcomeOut

MAX_REASON: Final = 500  # a reason is a sentence for a log line, not a document
# The kinds a caller may halt with: the operator's, and the daemon-wide limits' (the daemon).
CALLER_KINDS: Final = (
    HaltKind.OPERATOR.value,
    HaltKind.PORTFOLIO_DAILY_LOSS.value,
    HaltKind.PORTFOLIO_DRAWDOWN_PCT.value,
)
Reason = Annotated[
    str, Query(min_length=1, max_length=MAX_REASON, description="Why (shown in list/status).")
]
By = Annotated[
    str,
    Query(min_length=1, max_length=64, description="Who asks: `operator`, `daemon`, a name."),
]


class HaltView(Protocol):
    """What the verbs need from the running worker."""

    def halt(self, reason: str, by: str, kind: str) -> HaltOutcome: ...

    def resume(self, by: str) -> HaltOutcome: ...

    def kill(self, flatten: bool, reason: str, by: str) -> HaltOutcome: ...


TokenCheck = Callable[[Path | None, HTTPAuthorizationCredentials | None], None]
_bearer = HTTPBearer(
    auto_error=False,
    description="Under a daemon: the content of its state dir's control.token.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def install_halt_routes(app: FastAPI, check: TokenCheck) -> None:
    """Add the verbs to the status app; `check` is its token guard."""
    responses: dict[int | str, dict[str, Any]] = {
        401: {"description": "Missing or wrong bearer token."},
        409: {"description": "`resume` of a strategy that is not halted (`not_halted`)."},
        422: {"description": "Invalid query parameters."},
    }

    @app.post("/halt", response_model=HaltOutcomeOut, responses=responses)
    async def halt(
        request: Request,
        credentials: Credentials = None,
        reason: Reason = "halted by the operator",
        by: By = "operator",
        kind: Annotated[str, Query(pattern=f"^({'|'.join(CALLER_KINDS)})$")] = "operator",
    ) -> dict[str, Any]:
        """No new entries; exits still run; resting entry orders are cancelled."""
        check(request.app.state.token_file, credentials)
        view: HaltView = request.app.state.view
        return to_json(view.halt(reason, by, kind))

    @app.post("/resume", response_model=HaltOutcomeOut, responses=responses)
    async def resume(
        request: Request, credentials: Credentials = None, by: By = "operator"
    ) -> dict[str, Any]:
        """Lift the halt; every limit is measured afresh from now."""
        check(request.app.state.token_file, credentials)
        view: HaltView = request.app.state.view
        return to_json(view.resume(by))

    @app.post("/kill", response_model=HaltOutcomeOut, responses=responses)
    async def kill(
        request: Request,
        credentials: Credentials = None,
        flatten: bool = False,
        reason: Reason = "killed by the operator",
        by: By = "operator",
    ) -> dict[str, Any]:
        """Halt, cancel every order; with `flatten`, close every position at market."""
        check(request.app.state.token_file, credentials)
        view: HaltView = request.app.state.view
        return to_json(view.kill(flatten, reason, by))
