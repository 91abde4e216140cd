"""Operator commands (`/status`, `/halt NAME|all`, ...): parsing, the kill confirmation, and
the `OperatorActions` contract the daemon implements. Transport-free: the Telegram poller feeds
it text and sends back what it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol

from qkt.errors import QktError

CONFIRM_S: Final = 60.0
HELP: Final = (
    "commands: /status, /list, /halt NAME|all, /resume NAME|all, "
    "/kill all [flatten] (then the same with confirm)"
)


class OperatorActions(Protocol):
    """What an operator may do from a chat; the daemon implements it. Each returns printable text.

    `name=None` means every strategy. Errors the operator should read are raised as QktError
    (their message is shown); anything else is reported as an internal error.
    """

    async def list(self) -> str: ...

    async def status(self) -> str: ...

    async def halt(self, name: str | None, reason: str) -> str: ...

    async def resume(self, name: str | None) -> str: ...

    async def kill(self, flatten: bool) -> str: ...


class CommandHandler:
    """Turns one chat message into one action and its reply."""

    def __init__(
        self,
        actions: OperatorActions,
        clock: Callable[[], float] = time.monotonic,
        confirm_s: float = CONFIRM_S,
    ) -> None:
        self._actions = actions
        self._clock = clock
        self._confirm_s = confirm_s
        self._kill_asked: dict[tuple[str, bool], float] = {}  # (chat, flatten) -> when asked

    async def handle(self, chat: str, text: str) -> str:
        """The reply to `text` sent from `chat` (already checked to be an allowed chat)."""
        words = text.split()
        if not words or not words[0].startswith("/"):
            return HELP
        # In groups Telegram appends the bot's name: `/halt@qkt_bot alpha`.
        command, args = words[0].split("@", 1)[0].lower(), words[1:]
        try:
            return await self._run(chat, command, args)
        except QktError as error:
            return f"error: {error.message}"
        except Exception as error:
            return f"error: internal ({type(error).__name__})"

    async def _run(self, chat: str, command: str, args: list[str]) -> str:
        if command == "/status" and not args:
            return await self._actions.status()
        if command == "/list" and not args:
            return await self._actions.list()
        if command in ("/halt", "/resume") and len(args) == 1:
            name = None if args[0].lower() == "all" else args[0]
            if command == "/halt":
                return await self._actions.halt(name, f"operator via chat {chat}")
            return await self._actions.resume(name)
        if command == "/kill" and args and args[0].lower() == "all":
            return await self._kill(chat, [a.lower() for a in args[1:]])
        return HELP

    async def _kill(self, chat: str, args: list[str]) -> str:
        flatten = "flatten" in args
        confirmed = "confirm" in args
        if set(args) - {"flatten", "confirm"}:
            return HELP
        key = (chat, flatten)
        now = self._clock()
        asked = self._kill_asked.pop(key, None)
        if not confirmed:
            self._kill_asked[key] = now
            again = "/kill all flatten confirm" if flatten else "/kill all confirm"
            what = "kill every strategy" + (" and flatten its positions" if flatten else "")
            return f"this will {what}: send {again} within {self._confirm_s:g} s to do it"
        if asked is None or now - asked > self._confirm_s:
            return "no pending /kill all to confirm (or it expired): send /kill all first"
        return await self._actions.kill(flatten)
