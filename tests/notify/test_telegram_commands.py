"""Operator commands over a fake Telegram Bot API: allowed chats only, no replay after restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from qkt.errors import NotFoundError
from qkt.notify import CommandHandler, Notifier, TelegramConfig, TelegramPoller, offset_path
from tests.fakes.telegram import FakeTelegram, fake_telegram
from tests.helpers import wait_until_async
from tests.notify.support import TOKEN, config, run

ALLOWED, STRANGER = 77, 99


class FakeActions:
    """Records what the operator asked for; the daemon's real OperatorActions do the work."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    async def list(self) -> str:
        self.calls.append(("list",))
        return "alpha running\nbeta halted"

    async def status(self) -> str:
        self.calls.append(("status",))
        return "daemon up 3h, 2 strategies"

    async def halt(self, name: str | None, reason: str) -> str:
        if name == "ghost":
            raise NotFoundError("no strategy named 'ghost'")
        self.calls.append(("halt", str(name), reason))
        return f"halted {name or 'all'}"

    async def resume(self, name: str | None) -> str:
        self.calls.append(("resume", str(name)))
        return f"resumed {name or 'all'}"

    async def kill(self, flatten: bool) -> str:
        self.calls.append(("kill", str(flatten)))
        return "killed 2 strategies"


def channel(tmp_path: Path, tg: FakeTelegram, poll_timeout_s: float = 0) -> TelegramConfig:
    cfg = config(
        tmp_path,
        ops={"kind": "telegram", "token_env": "QKT_TG_TOKEN", "chat_id": ALLOWED,
             "api_url": tg.base_url(), "commands": True, "poll_timeout_s": poll_timeout_s},
    )  # fmt: skip
    ops = cfg.channels[0]
    assert isinstance(ops, TelegramConfig)
    return ops


async def poll(poller: TelegramPoller) -> int:
    try:
        return await poller.poll_once()
    finally:
        await poller.aclose()


def test_commands_from_the_allowed_chat_act_and_others_do_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    actions = FakeActions()
    with fake_telegram(TOKEN) as tg:
        ops = channel(tmp_path, tg)
        tg.push_message(STRANGER, "/halt alpha")
        tg.push_message(ALLOWED, "/halt alpha")
        tg.push_message(STRANGER, "/kill all")
        tg.push_message(ALLOWED, "/resume all")
        tg.push_message(ALLOWED, "/status")
        tg.push_message(ALLOWED, "/list@qkt_bot")
        tg.push_message(ALLOWED, "/halt ghost")
        tg.push_message(ALLOWED, "hello")
        poller = TelegramPoller(ops, CommandHandler(actions), offset_path(tmp_path, "ops"))
        assert run(poll(poller)) == 8
        replies = [m["text"] for m in tg.sent()]
        assert {str(m["chat_id"]) for m in tg.sent()} == {str(ALLOWED)}
    assert actions.calls == [
        ("halt", "alpha", f"operator via chat {ALLOWED}"),
        ("resume", "None"),
        ("status",),
        ("list",),
    ]
    assert replies[:4] == [
        "halted alpha",
        "resumed all",
        "daemon up 3h, 2 strategies",
        "alpha running\nbeta halted",
    ]
    assert replies[4] == "error: no strategy named 'ghost'"
    assert replies[5].startswith("commands: /status")
    ignored = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 2 and all(f"chat {STRANGER}" in line for line in ignored)


def test_a_restart_does_not_run_old_commands_again(tmp_path: Path) -> None:
    actions = FakeActions()
    with fake_telegram(TOKEN) as tg:
        ops = channel(tmp_path, tg)
        offsets = offset_path(tmp_path, "ops")
        update_id = tg.push_message(ALLOWED, "/halt alpha")
        run(poll(TelegramPoller(ops, CommandHandler(actions), offsets)))
        assert offsets.read_text().strip() == str(update_id + 1)
        assert offsets.stat().st_mode & 0o777 == 0o600
        # The daemon restarts: a new poller on the same offset file sees nothing old.
        again = TelegramPoller(ops, CommandHandler(actions), offsets)
        assert again.offset == update_id + 1
        assert run(poll(again)) == 0
        assert actions.calls == [("halt", "alpha", f"operator via chat {ALLOWED}")]
        # Without the persisted offset the old command would have run twice (the test can fail).
        forgetful = TelegramPoller(ops, CommandHandler(actions), tmp_path / "other.offset")
        tg.push_message(ALLOWED, "/resume alpha")
        assert run(poll(forgetful)) == 1


def test_kill_all_needs_a_confirmation_within_a_minute(tmp_path: Path) -> None:
    now = [1000.0]
    actions = FakeActions()
    handler = CommandHandler(actions, clock=lambda: now[0])

    async def say(text: str, chat: str = "77") -> str:
        return await handler.handle(chat, text)

    async def scenario() -> list[str]:
        replies = [await say("/kill all confirm")]  # nothing to confirm yet
        replies.append(await say("/kill all"))
        now[0] += 61
        replies.append(await say("/kill all confirm"))  # too late
        replies.append(await say("/kill all flatten"))
        replies.append(await say("/kill all confirm", chat="78"))  # another chat's confirm
        now[0] += 30
        replies.append(await say("/kill all flatten confirm"))
        return replies

    replies = run(scenario())
    assert replies[0].startswith("no pending /kill all")
    assert "send /kill all confirm within 60 s" in replies[1]
    assert replies[2].startswith("no pending /kill all")
    assert "send /kill all flatten confirm" in replies[3]
    assert replies[4].startswith("no pending /kill all")
    assert replies[5] == "killed 2 strategies"
    assert actions.calls == [("kill", "True")]


def test_get_updates_429_waits_retry_after_then_long_polling_delivers(tmp_path: Path) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    actions = FakeActions()
    with fake_telegram(TOKEN) as tg:
        ops = channel(tmp_path, tg, poll_timeout_s=1)
        tg.rate_limit_next("getUpdates", 1, retry_after=9)

        async def scenario() -> None:
            poller = TelegramPoller(
                ops, CommandHandler(actions), offset_path(tmp_path, "ops"), sleep=sleep
            )
            task = asyncio.create_task(poller.run())
            await wait_until_async(lambda: waits == [9.0])
            tg.push_message(ALLOWED, "/halt all")  # arrives while a long poll is open
            await wait_until_async(lambda: tg.sent(str(ALLOWED)))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        run(scenario())
        assert actions.calls == [("halt", "None", f"operator via chat {ALLOWED}")]
        long_polls = [body for method, body in tg.calls if method == "getUpdates"]
        assert all(body["timeout"] == 1 for body in long_polls)


def test_the_notifier_serves_commands_for_the_daemon(tmp_path: Path) -> None:
    actions = FakeActions()
    with fake_telegram(TOKEN) as tg:
        cfg = config(
            tmp_path,
            ops={"kind": "telegram", "token_env": "QKT_TG_TOKEN", "chat_id": ALLOWED,
                 "api_url": tg.base_url(), "commands": True, "poll_timeout_s": 1},
        )  # fmt: skip

        async def scenario() -> None:
            notifier = Notifier(cfg)
            await notifier.start(actions=actions)
            tg.push_message(ALLOWED, "/halt beta")
            await wait_until_async(lambda: tg.sent(str(ALLOWED)))
            await notifier.aclose()

        run(scenario())
        assert actions.calls == [("halt", "beta", f"operator via chat {ALLOWED}")]
        assert tg.sent()[0]["text"] == "halted beta"
        assert offset_path(tmp_path, "ops").exists()
