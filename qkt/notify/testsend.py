"""`qkt notify test [CHANNEL]`: one test message through each channel, and what each answered."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import httpx

from qkt.notify.config import NotifyConfig
from qkt.notify.events import Event, EventKind
from qkt.notify.notifier import quiet_http_logs
from qkt.notify.pending import Digest
from qkt.notify.senders import send


@dataclass(frozen=True, slots=True)
class TestResult:
    """One channel's answer to the test message (printable; no secret)."""

    __test__ = False  # not a pytest class, whatever its name

    channel: str
    kind: str
    ok: bool
    answer: str


async def send_test(
    config: NotifyConfig, channel: str | None = None, *, client: httpx.AsyncClient | None = None
) -> list[TestResult]:
    """Send one test message through `channel` (every channel if None), once, without retries.

    Raises NotifyConfigError for an unknown channel name.
    """
    chosen = [config.channel(channel)] if channel is not None else list(config.channels)
    quiet_http_logs()
    event = Event.of(EventKind.TEST, None, host=socket.gethostname())
    own = client is None
    http = client or httpx.AsyncClient(follow_redirects=False)
    try:
        answers = await asyncio.gather(*(send(c, http, Digest.of(event)) for c in chosen))
    finally:
        if own:
            await http.aclose()
    return [
        TestResult(c.name, c.kind, a.ok, a.detail) for c, a in zip(chosen, answers, strict=True)
    ]


def run_test(config: NotifyConfig, channel: str | None = None) -> list[TestResult]:
    """`send_test` for a caller without an event loop (the CLI)."""
    return asyncio.run(send_test(config, channel))
