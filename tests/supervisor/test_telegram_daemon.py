"""Telegram commands served by a real daemon through the fake Bot API: the allowed chat gets
answers, another chat gets nothing, a restarted daemon goes on after the last command it saw.
`/halt` and `/resume` go to the daemon's halting service, as `qkt halt` and `qkt resume` do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.telegram import FakeTelegram, fake_telegram
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, running_daemon, strategy

pytestmark = pytest.mark.slow

TOKEN = "777:fake-token-never-printed"
CHAT = "42"


def replies(tg: FakeTelegram, chat: str = CHAT) -> list[str]:
    return [str(body["text"]) for body in tg.sent(chat_id=chat)]


def offsets(tg: FakeTelegram) -> list[int | None]:
    return [body.get("offset") for method, body in tg.calls if method == "getUpdates"]


def test_commands_from_the_allowed_chat_only_and_no_replay_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QKT_TEST_TG", TOKEN)
    with fake_telegram(TOKEN) as tg:
        config = tmp_path / "qkt.toml"
        config.write_text(
            f'[notify.ops]\nkind = "telegram"\ntoken_env = "QKT_TEST_TG"\nchat_id = "{CHAT}"\n'
            f'api_url = "{tg.base_url()}"\nevents = ["gave_up"]\ncommands = true\n'
            "poll_timeout_s = 1\ncoalesce_s = 0\n"
        )
        args = ("--config", str(config))
        with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
            assert daemon.cli("deploy", str(strategy(tmp_path, "alpha"))).returncode == 0
            tg.push_message(99, "/list")  # not an allowed chat: ignored
            tg.push_message(CHAT, "/list")
            wait_until(lambda: replies(tg), timeout=20, what="the /list answer")
            assert replies(tg)[0].startswith("alpha: running")
            last = tg.push_message(CHAT, "/halt alpha")
            wait_until(lambda: len(replies(tg)) == 2, timeout=20, what="the /halt answer")
            assert replies(tg)[1] == "halted alpha"
            (entry,) = daemon.get("/list").json()
            assert entry["halt"]["by"] == "telegram"
            tg.push_message(99, "/resume alpha")  # not an allowed chat: the halt stays
            last = tg.push_message(CHAT, "/resume alpha")
            wait_until(lambda: len(replies(tg)) == 3, timeout=20, what="the /resume answer")
            assert replies(tg)[2] == "resumed alpha"
            (entry,) = daemon.get("/list").json()
            assert entry.get("halt") is None
            assert replies(tg, "99") == []
            daemon.stop()
        polls = len(offsets(tg))
        with running_daemon(tmp_path / "s", *args):
            wait_until(lambda: len(offsets(tg)) > polls, timeout=20, what="a poll")
            assert offsets(tg)[polls] == last + 1  # it goes on after the last command it ran
        assert len(replies(tg)) == 3
