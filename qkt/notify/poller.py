"""Telegram long polling (`getUpdates`) for operator commands, from allowed chats only.

The offset is written (temp + rename) before a command runs, so a restart never runs an old
command again: at most once, which is the safe side for `/kill`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import httpx

from qkt.atomic import write_atomic
from qkt.notify.channel import Sleep
from qkt.notify.commands import CommandHandler
from qkt.notify.config import TelegramConfig
from qkt.notify.render import telegram_body
from qkt.notify.senders import telegram_call

log = logging.getLogger("qkt.notify")


def offset_path(state_dir: Path, channel: str) -> Path:
    """Where channel `channel` keeps its next getUpdates offset."""
    return state_dir / "notify" / f"{channel}.offset"


class TelegramPoller:
    """One `commands = true` Telegram channel's update loop."""

    def __init__(
        self,
        config: TelegramConfig,
        handler: CommandHandler,
        offset_file: Path,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self._handler = handler
        self._offset_file = offset_file
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._sleep = sleep
        self.offset = self._read_offset()
        self._failures = 0  # getUpdates failures in a row

    def _backoff(self) -> float:
        delivery = self.config.delivery
        return float(min(delivery.backoff_s * 2 ** (self._failures - 1), delivery.backoff_max_s))

    def _read_offset(self) -> int | None:
        try:
            return int(self._offset_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    async def poll_once(self) -> int:
        """One getUpdates round: handle what came; the number of updates seen. Never raises
        on a bad answer: it waits as the answer asks (429 retry_after) or backs off."""
        body: dict[str, Any] = {
            "timeout": int(self.config.poll_timeout_s),
            "allowed_updates": ["message"],
        }
        if self.offset is not None:
            body["offset"] = self.offset
        answer = await telegram_call(
            self._client,
            self.config,
            "getUpdates",
            body,
            timeout_s=self.config.poll_timeout_s + self.config.delivery.timeout_s,
        )
        if not answer.ok or not isinstance(answer.body, list):
            # 409 (another poller, or a webhook set on the bot) repeats: back off exponentially.
            self._failures += 1
            log.warning("notify telegram %s: getUpdates: %s", self.config.name, answer.detail)
            await self._sleep(answer.retry_after_s or self._backoff())
            return 0
        self._failures = 0
        for update in answer.body:
            await self._one(update)
        return len(answer.body)

    async def _one(self, update: Any) -> None:
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return
        self.offset = update["update_id"] + 1
        write_atomic(self._offset_file, f"{self.offset}\n", mode=0o600)
        message = update.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return
        chat = str((message.get("chat") or {}).get("id", ""))
        text: str = message["text"]
        if chat not in self.config.command_chats:
            log.warning(
                "notify telegram %s: ignored %r from chat %s (not in command_chats)",
                self.config.name,
                text.split()[0][:32] if text.split() else "",
                chat,
            )
            return
        log.info("notify telegram %s: chat %s: %s", self.config.name, chat, text[:100])
        reply = await self._handler.handle(chat, text)
        answer = await telegram_call(
            self._client, self.config, "sendMessage", telegram_body(chat, reply)
        )
        if not answer.ok:
            log.warning("notify telegram %s: reply not sent: %s", self.config.name, answer.detail)

    async def run(self) -> None:
        """Poll until cancelled."""
        try:
            while True:
                try:
                    await self.poll_once()
                except Exception:
                    log.exception("notify telegram %s: command loop error", self.config.name)
                    await self._sleep(self.config.delivery.backoff_s)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this poller made it."""
        if self._own_client:
            with contextlib.suppress(Exception):
                await self._client.aclose()
