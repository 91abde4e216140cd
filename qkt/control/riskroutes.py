"""The operator's verbs on the control plane (docs/risk.md): halt, resume and kill, by name
(`POST /halt/{name}`) or for every strategy (`POST /halt`); options as query parameters, as for
`POST /stop/{name}?flatten=true`. Each answers with every strategy it touched: its halt and the
positions left. An unknown name is a 404 and `resume` of a strategy that is not halted a 409
`not_halted`; neither changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query

from qkt.control.auth import require_token
from qkt.control.routes import DaemonDep, Name, errors
from qkt.control.schemas import RISK_PATTERNS, HaltResult
from qkt.engine import LIMIT_FLAGS, parse_leverage
from qkt.records import to_json
from qkt.supervisor.halts import KILL_REASON, OPERATOR_REASON

MAX_REASON: Final = 500
BY: Final = "operator"
router = APIRouter(dependencies=[Depends(require_token)])

Reason = Annotated[
    str,
    Query(min_length=1, max_length=MAX_REASON, description="Why: shown by list and status."),
]
Flatten = Annotated[bool, Query(description="Close every position at market as well.")]


# The engine's parser of each deploy risk option: its message for a value the schema refused
# (`--max-daily-loss: -5 must be above 0`), as the CLI would say it.
def _parser(flag: str) -> Callable[[object], object]:
    parse = LIMIT_FLAGS[flag] if flag in LIMIT_FLAGS else parse_leverage
    return lambda value: parse(str(value))


RISK_INPUTS: Final[dict[tuple[Any, ...], Callable[[object], object]]] = {
    ("body", name): _parser("--" + name.replace("_", "-")) for name in RISK_PATTERNS
}


@router.post("/halt/{name}", response_model=HaltResult, responses=errors(400, 404, 409, 422, 502))
async def halt_one(name: Name, daemon: DaemonDep, reason: Reason = OPERATOR_REASON) -> Any:
    """No new entries for NAME; exits still run; its resting entry orders are cancelled."""
    return to_json(await daemon.halts.halt(name, reason, BY))


@router.post("/halt", response_model=HaltResult, responses=errors(409, 422, 502))
async def halt_all(daemon: DaemonDep, reason: Reason = OPERATOR_REASON) -> Any:
    """Halt every strategy."""
    return to_json(await daemon.halts.halt(None, reason, BY))


@router.post("/resume/{name}", response_model=HaltResult, responses=errors(400, 404, 409, 422, 502))
async def resume_one(name: Name, daemon: DaemonDep) -> Any:
    """Lift NAME's halt (409 `not_halted` if it is not halted)."""
    return to_json(await daemon.halts.resume(name, BY))


@router.post("/resume", response_model=HaltResult, responses=errors(409, 502))
async def resume_all(daemon: DaemonDep) -> Any:
    """Lift every halt."""
    return to_json(await daemon.halts.resume(None, BY))


@router.post("/kill/{name}", response_model=HaltResult, responses=errors(400, 404, 409, 422, 502))
async def kill_one(
    name: Name, daemon: DaemonDep, flatten: Flatten = False, reason: Reason = KILL_REASON
) -> Any:
    """Halt NAME, cancel all its orders, with `flatten` close its positions."""
    return to_json(await daemon.halts.kill(name, flatten, BY, reason))


@router.post("/kill", response_model=HaltResult, responses=errors(409, 422, 502))
async def kill_all(
    daemon: DaemonDep, flatten: Flatten = False, reason: Reason = KILL_REASON
) -> Any:
    """Kill every strategy."""
    return to_json(await daemon.halts.kill(None, flatten, BY, reason))
