"""Crash-safe file writes: temp file in the same folder, fsync, os.replace.

State files are private (0600 unless asked otherwise) and never read through a symlink: the
rename replaces a symlink planted at the path instead of writing through it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson


def write_atomic(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write `data` to `path` so that readers see the old content or the new, never a mix."""
    import tempfile  # here: readers of state files (every CLI command) never need it

    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; set the final mode before the file becomes visible.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: Any, mode: int = 0o600) -> None:
    """`write_atomic` of `value` as indented JSON."""
    write_atomic(path, orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n", mode)


def read_json(path: Path) -> Any:
    """Parse the JSON file at `path` (raises FileNotFoundError / orjson.JSONDecodeError; OSError
    with ELOOP for a symlink)."""
    return orjson.loads(read_private(path))


def read_private(path: Path) -> bytes:
    """The bytes of the regular file at `path`, never followed through a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return f.read()
