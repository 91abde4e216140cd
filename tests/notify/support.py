"""Building notify configs against the local fakes, and running async scenarios from sync tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from qkt.notify import NotifyConfig, parse_notify_config

T = TypeVar("T")

TOKEN = "424242:FAKE-token-never-printed"
HOOK_KEY = "hmac-key-never-printed"
# Fast delivery for tests: no flood window unless asked, tiny backoff, short HTTP timeout.
FAST: dict[str, Any] = {"coalesce_s": 0, "backoff_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 2}


def config(
    tmp_path: Path, env: dict[str, str] | None = None, **channels: dict[str, Any]
) -> NotifyConfig:
    """`parse_notify_config` of `channels` (each with FAST delivery unless it says otherwise)."""
    table = {name: {**FAST, **settings} for name, settings in channels.items()}
    environment = {"QKT_TG_TOKEN": TOKEN, "QKT_HOOK_KEY": HOOK_KEY, **(env or {})}
    return parse_notify_config(table, environment, tmp_path)


def run(scenario: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
    return asyncio.run(asyncio.wait_for(scenario, timeout_s))
