"""`bearer_problem`: the one check of the daemon's token on a worker's routes.

Both doors of a worker's status port use it: the routes of its FastAPI app (`status.py`) and
the two requests answered in front of the app (`fastpath.py`).
"""

from __future__ import annotations

import hmac
from pathlib import Path


def bearer_problem(token_file: Path | None, given: str | None) -> str | None:
    """Why a request carrying bearer token `given` (None: no Authorization header) may not
    read this worker, or None if it may: any request when the worker has no token file
    (`qkt run`), else one with the file's token."""
    if token_file is None:
        return None
    try:
        expected = token_file.read_text(encoding="utf-8").strip()
    except OSError:
        return "this worker's token file cannot be read"
    if given is None or not expected:
        return "send Authorization: Bearer <token> (the daemon's control.token)"
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return "wrong bearer token"
    return None
