"""Test-wide fixtures: every test gets its own state dir, so no test touches ~/.local/state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("QKT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    yield


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    """A fresh state dir (short path: ZeroMQ ipc:// paths are limited to ~107 bytes)."""
    root = tmp_path / "s"
    root.mkdir()
    return root
