"""The daemon's side of Telegram operator commands (`qkt.notify.OperatorActions`).

`/list` and `/status` read the registry; `/halt`, `/resume` and `/kill all` go to the daemon's
halting service (`daemon.halts`: `halt(name|None, reason, by)`, `resume(name|None, by)`,
`kill(name|None, flatten, by)`), the same calls `qkt halt`, `resume` and `kill` make.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from qkt.supervisor.daemon import Daemon
    from qkt.supervisor.halts import Halts

BY: Final = "telegram"


def _seconds(ms: int) -> str:
    seconds = ms // 1000
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


class ChatActions:
    """What an allowed chat may do to `daemon`; every answer is short printable text."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    async def list(self) -> str:
        registry = self._daemon.registry
        await registry.status_all()  # the trade counts below, fresh
        handles = registry.handles()
        if not handles:
            return "no strategies deployed"
        lines = []
        for handle in handles:
            entry = registry.entry(handle)
            state = entry.state + (" (stale)" if entry.stale else "")
            state += " (warming)" if entry.warming else ""
            trades = "?" if entry.trades is None else str(entry.trades)
            lines.append(f"{entry.name}: {state}, {trades} trades, {entry.restarts} restarts")
        return "\n".join(lines)

    async def status(self) -> str:
        daemon = self._daemon
        health = daemon.health()
        lines = [
            f"qkt {health.version} daemon, pid {health.pid}, up {_seconds(health.uptime_ms)}",
            f"{health.strategies} strateg{'y' if health.strategies == 1 else 'ies'}",
        ]
        for line in daemon.hub_keys():
            feed = "stale" if line.stale else "live"
            warm = "warm" if line.warm else "cold"
            lines.append(f"{line.key}: {feed}, {warm}, {line.subscribers} reading")
        return "\n".join(lines)

    def _halts(self) -> Halts:
        return self._daemon.halts

    def _known(self, name: str | None) -> None:
        if name is not None:
            self._daemon.registry.get(name)  # NotFoundError: its message is the answer

    async def halt(self, name: str | None, reason: str) -> str:
        self._known(name)
        answer = await self._halts().halt(name, reason, BY)
        return _said(answer, f"halted {name or 'every strategy'}")

    async def resume(self, name: str | None) -> str:
        self._known(name)
        answer = await self._halts().resume(name, BY)
        return _said(answer, f"resumed {name or 'every strategy'}")

    async def kill(self, flatten: bool) -> str:
        answer = await self._halts().kill(None, flatten, BY)
        done = "killed every strategy" + (" and flattened its positions" if flatten else "")
        return _said(answer, done)


def _said(answer: object, default: str) -> str:
    """The halting service's own words when it returns text, else ours."""
    return answer if isinstance(answer, str) and answer else default
