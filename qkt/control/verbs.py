"""The control plane's life-cycle routes: restart, stop or restart all, remove, list all.

`POST /deploy` keeps its route (`qkt.control.routes`) and takes the name-reuse choices from
`DeployRequest` (`replace`, `keep_state`, `resume`, `fresh`); the rest are here.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, WithJsonSchema

from qkt.control.auth import require_token
from qkt.control.routes import DaemonDep, Name, errors
from qkt.control.schemas import ListEntry, StopResult
from qkt.records import to_json
from qkt.supervisor import operations

_TIMEOUT_SCHEMA: Final = WithJsonSchema(
    {
        "type": "integer",
        "minimum": 0,
        "maximum": 3_600_000,
        "description": "Grace before SIGKILL, in ms (default 5000).",
    }
)
Timeout = Annotated[int | None, Query(ge=0, le=3_600_000), _TIMEOUT_SCHEMA]
Flatten = Annotated[bool, Query(description="Close every position at market first.")]

router = APIRouter(dependencies=[Depends(require_token)])


class HistoryEntry(BaseModel):
    """One row of `GET /list/all`: a deployed strategy, or a stopped one not yet removed."""

    name: str
    state: str = Field(description="A list entry's state; `stopped` once stopped with qkt stop.")
    file: str
    pid: int | None
    port: int | None
    uptime_ms: int
    restarts: int
    trades: int | None
    equity: str | None = Field(description="Last known equity (exact decimal string).")
    realized: str | None
    unrealized: str | None
    total_pnl: str | None
    exit_code: int | None
    stopped_at: str | None = Field(description="ISO 8601 UTC time of the stop.")
    error: str | None


class RemoveResult(BaseModel):
    """`POST /rm/{name}`: forgotten; where its journal and logs went (null: deleted)."""

    name: str
    archived: str | None


@router.get("/list/all", response_model=list[HistoryEntry], responses=errors())
async def list_all(daemon: DaemonDep) -> list[dict[str, Any]]:
    """Every deployed strategy and every stopped one not removed, with the last figures."""
    await daemon.registry.current_figures()
    return [to_json(row) for row in operations.history(daemon.registry, daemon.state)]


@router.post(
    "/restart/{name}", response_model=ListEntry, responses=errors(400, 404, 409, 422, 502, 503)
)
async def restart(name: Name, daemon: DaemonDep, timeout: Timeout = None) -> dict[str, Any]:
    """Stop NAME gracefully and start the same deployment (the same source) again."""
    handle = await daemon.registry.restart(name, timeout)
    return to_json(handle.entry())


@router.post("/restart", response_model=list[ListEntry], responses=errors(409, 422, 502, 503))
async def restart_all(daemon: DaemonDep, timeout: Timeout = None) -> list[dict[str, Any]]:
    """Restart every deployed strategy."""
    handles = await operations.restart_every(daemon.registry, timeout_ms=timeout)
    return [to_json(handle.entry()) for handle in handles]


@router.post("/stop", response_model=list[StopResult], responses=errors(409, 422))
async def stop_all(
    daemon: DaemonDep, flatten: Flatten = False, timeout: Timeout = None
) -> list[dict[str, Any]]:
    """Stop every deployed strategy (each as `POST /stop/{name}` would)."""
    found = await operations.stop_every(daemon.registry, flatten=flatten, timeout_ms=timeout)
    return [to_json(result) for result in found]


@router.post("/rm/{name}", response_model=RemoveResult, responses=errors(400, 404, 409, 422))
async def remove(
    name: Name,
    daemon: DaemonDep,
    purge: Annotated[bool, Query(description="Delete the journal and logs.")] = False,
) -> dict[str, Any]:
    """Forget a stopped strategy; its journal and logs move to <state>/archive (or are deleted)."""
    return to_json(operations.remove(daemon.registry, daemon.state, name, purge=purge))
