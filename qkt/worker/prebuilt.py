"""The status app built before the fork: `prebuild_status_app()` in the fork server, then
`status_app_for(...)` in the worker the fork becomes.

An app is a few thousand objects (routes, their dependencies, the pydantic schemas and
serializers of the answers, the middleware). Built in each worker they would be new memory in
each; built once in the fork server they are shared by every worker, which only binds its own
state to it (`bind_status_app`). A process that was not forked (`qkt run`, tests) builds its own.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Final

from fastapi import FastAPI

from qkt.worker.events import EventRing
from qkt.worker.status import WorkerView, bind_status_app, build_status_app

_BOUND: Final = ("view", "ring", "token_file", "registry")  # what bind_status_app sets
# At most one app, for the one worker a fork becomes.
_prebuilt: list[FastAPI] = []


def prebuild_status_app() -> FastAPI:
    """Build the status app now (in the fork server) for the next worker forked from here."""
    if not _prebuilt:
        _prebuilt.append(build_status_app())
    return _prebuilt[0]


def return_status_app(app: FastAPI) -> None:
    """Hand a prebuilt app back after a rehearsal used it, with no worker bound to it."""
    for name in _BOUND:
        with contextlib.suppress(AttributeError):
            delattr(app.state, name)
    if app not in _prebuilt:
        _prebuilt.append(app)


def status_app_for(view: WorkerView, ring: EventRing, token_file: Path | None) -> FastAPI:
    """This process's status app: the prebuilt one if there is one (a worker has one status
    app; a second worker in the same process builds its own), else a new one."""
    app = _prebuilt.pop() if _prebuilt else build_status_app()
    return bind_status_app(app, view, ring, token_file)
