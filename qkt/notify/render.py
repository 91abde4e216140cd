"""Digests -> the bodies each service expects (webhook JSON, Slack, Discord, Telegram text)."""

from __future__ import annotations

from typing import Any, Final

from qkt.log import iso_utc
from qkt.notify.events import EventKind
from qkt.notify.pending import Digest

TITLES: Final[dict[EventKind, str]] = {
    EventKind.DEPLOY: "deployed",
    EventKind.DEPLOY_FAILED: "deploy failed",
    EventKind.STOP: "stopped",
    EventKind.CRASH: "crashed",
    EventKind.RESTART: "restarted",
    EventKind.GAVE_UP: "gave up restarting",
    EventKind.HALT: "halted",
    EventKind.RESUME: "resumed",
    EventKind.KILL: "killed",
    EventKind.RISK: "risk limit breached",
    EventKind.STALE: "feed stale",
    EventKind.LIVE: "feed live again",
    EventKind.FILL: "fill",
    EventKind.DAEMON: "daemon",
    EventKind.SUMMARY: "daily summary",
    EventKind.TEST: "test message",
}
SLACK_LIMIT: Final = 3000  # Slack truncates long messages; keep well under its 40k hard cap
DISCORD_LIMIT: Final = 2000  # `content` may hold at most 2000 characters
TELEGRAM_LIMIT: Final = 4096  # sendMessage `text`: 1-4096 characters


def text(digest: Digest) -> str:
    """The human message: one event in full, or a flood as a count with the latest in full."""
    last = digest.last
    who = f"{last.strategy} " if last.strategy else ""
    head = f"qkt: {who}{TITLES[last.kind]}"
    facts = " ".join(f"{k}={v}" for k, v in last.fields.items())
    if digest.count > 1:
        names = ", ".join(f"{name} x{n}" for name, n in digest.by_strategy.items())
        span = f"{iso_utc(digest.first_ms, millis=False)} .. {iso_utc(last.time_ms, millis=False)}"
        lines = [f"qkt: {TITLES[last.kind]} x{digest.count} ({span})"]
        if names:
            lines.append(names)
        lines.append(f"latest: {head.removeprefix('qkt: ')}{' ' + facts if facts else ''}")
    else:
        lines = [f"{head}{' ' + facts if facts else ''}", iso_utc(last.time_ms, millis=False)]
    lines.extend(last.lines)
    return "\n".join(lines)


def truncate(message: str, limit: int) -> str:
    """`message` cut to `limit` characters, marked when cut."""
    return message if len(message) <= limit else message[: limit - 2] + "\n…"


def webhook_body(digest: Digest) -> dict[str, Any]:
    """The generic webhook document: event, strategy, time, fields (+ lines, count, strategies)."""
    last = digest.last
    return {
        "event": last.kind.value,
        "strategy": last.strategy,
        "time": iso_utc(last.time_ms),
        "fields": dict(last.fields),
        "lines": list(last.lines),
        "count": digest.count,
        "first_time": iso_utc(digest.first_ms),
        "strategies": dict(digest.by_strategy),
        "text": text(digest),
    }


def slack_body(digest: Digest) -> dict[str, Any]:
    """A Slack incoming-webhook message (`text` is the required field)."""
    return {"text": truncate(text(digest), SLACK_LIMIT)}


def discord_body(digest: Digest) -> dict[str, Any]:
    """A Discord execute-webhook body; mentions off so a log line cannot ping @everyone."""
    return {
        "content": truncate(text(digest), DISCORD_LIMIT),
        "username": "qkt",
        "allowed_mentions": {"parse": []},
    }


def telegram_body(chat_id: str, message: str) -> dict[str, Any]:
    """A Bot API `sendMessage` body (plain text: no parse_mode, nothing to escape)."""
    return {
        "chat_id": chat_id,
        "text": truncate(message, TELEGRAM_LIMIT),
        "disable_web_page_preview": True,
    }
