"""Secrets stay out of logs, errors and records, whatever fails; `qkt notify test` answers."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from qkt.notify import (
    Event,
    Notifier,
    NotifyConfigError,
    TelegramConfig,
    run_test,
    send_test,
)
from qkt.notify.commands import CommandHandler
from qkt.notify.poller import TelegramPoller, offset_path
from tests.fakes.notify_receivers import notify_receiver
from tests.fakes.telegram import fake_telegram
from tests.helpers import wait_until_async
from tests.notify.support import HOOK_KEY, TOKEN, config, run

SLACK_SECRET = "T0/B0/slackSECRETpart"
DISCORD_SECRET = "99/discordSECRETpart"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_secret_in_logs_errors_or_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = closed_port()
    with notify_receiver() as rx, fake_telegram("another-token") as tg:
        rx.always(500)
        cfg = config(
            tmp_path,
            {
                "SLACK": f"http://127.0.0.1:{dead}/slack/{SLACK_SECRET}",
                "DISCORD": rx.url(f"/discord/{DISCORD_SECRET}"),
            },
            hook={"kind": "webhook", "url": rx.url("/hook/s"), "secret_env": "QKT_HOOK_KEY",
                  "retries": 1},
            team={"kind": "slack", "url_env": "SLACK", "retries": 1},
            chat={"kind": "discord", "url_env": "DISCORD", "retries": 1},
            # The fake knows another token: every call is refused with 401.
            ops={"kind": "telegram", "token_env": "QKT_TG_TOKEN", "chat_id": 5,
                 "api_url": tg.base_url(), "retries": 1, "commands": True},
        )  # fmt: skip

        async def scenario() -> str:
            notifier = Notifier(cfg)
            await notifier.start()
            notifier.publish(Event.crash("alpha", 1, ["Traceback ..."]))
            await wait_until_async(
                lambda: all(h.state.value == "failing" for h in notifier.health())
            )
            ops = cfg.channels[3]
            assert isinstance(ops, TelegramConfig)
            poller = TelegramPoller(
                ops,
                CommandHandler(object()),
                offset_path(tmp_path, "ops"),  # type: ignore[arg-type]
            )
            await poller.poll_once()
            await poller.aclose()
            results = await send_test(cfg)
            await notifier.aclose()
            return repr(notifier.health()) + repr(results) + repr(cfg) + str(results)

        shown = run(scenario())
    with pytest.raises(NotifyConfigError) as caught:
        cfg.channel("nope")
    everything = shown + caplog.text + str(caught.value)
    assert "failing" in shown and "401" in caplog.text  # the failures were reported
    for secret in (TOKEN, HOOK_KEY, SLACK_SECRET, DISCORD_SECRET, "SECRETpart"):
        assert secret not in everything


def test_notify_test_sends_through_each_channel_and_says_what_it_answered(
    tmp_path: Path,
) -> None:
    with notify_receiver() as rx, fake_telegram(TOKEN) as tg:
        rx.fail_next(1, status=404, path="/hook/gone")  # that hook was deleted
        cfg = config(
            tmp_path,
            {"SLACK": rx.url("/slack/T/B/z")},
            gone={"kind": "webhook", "url": rx.url("/hook/gone"), "events": ["crash"]},
            team={"kind": "slack", "url_env": "SLACK", "events": ["deploy"]},
            ops={"kind": "telegram", "token_env": "QKT_TG_TOKEN", "chat_id": 5,
                 "api_url": tg.base_url(), "events": ["summary"]},
        )  # fmt: skip
        results = {r.channel: r for r in run_test(cfg)}
        assert {name: (r.kind, r.ok, r.answer) for name, r in results.items()} == {
            "gone": ("webhook", False, "404"),
            "team": ("slack", True, "200"),
            "ops": ("telegram", True, "200"),
        }
        assert "test message" in tg.sent("5")[0]["text"]
        (only,) = run_test(cfg, "team")
        assert only.channel == "team" and only.ok
        assert len(rx.posts("/slack/T/B/z")) == 2
        with pytest.raises(NotifyConfigError, match="no notify channel 'nope'"):
            run_test(cfg, "nope")
