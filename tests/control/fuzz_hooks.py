"""Schemathesis hooks for tests/control/test_fuzz.py (loaded through `SCHEMATHESIS_HOOKS`).

`GET /logs/{name}?follow=true` streams until the client leaves: a fuzzer waiting for the end of
that answer would wait for its request timeout and report it. The route still gets every other
parameter the fuzzer makes; following is tested on its own in tests/cli/test_daemon_cli.py.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Never follow a log: take the tail and return."""
    if case.query and "follow" in case.query:
        case.query["follow"] = False
