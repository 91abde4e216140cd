"""`[notify.*]` tables -> typed channel configs, or one error line naming the key at fault."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest

from qkt.notify import (
    DiscordConfig,
    EventKind,
    Notifier,
    NotifyConfigError,
    SlackConfig,
    TelegramConfig,
    WebhookConfig,
    load_notify_config,
    parse_notify_config,
)

TOKEN = "123456:SECRET-bot-token-value"
HOOK_KEY = "hmac-key-that-must-not-leak"
SLACK_URL = "https://hooks.slack.example/services/T0/B0/xyzSECRETxyz"

FULL = """
[notify]
summary_at = "21:30"

[notify.ops]
kind = "telegram"
token_env = "QKT_TG_TOKEN"
chat_id = "123456"
events = ["crash", "gave_up", "halt", "risk", "stale", "daemon", "summary"]
commands = true

[notify.hook]
kind = "webhook"
url = "http://127.0.0.1:9/qkt"
secret_env = "QKT_HOOK_SECRET"
events = ["*"]

[notify.team]
kind = "slack"
url_env = "QKT_SLACK_URL"
events = ["deploy", "fill"]
retries = 2
timeout_s = 3

[notify.chat]
kind = "discord"
url_file = "discord.url"
"""
ENV = {"QKT_TG_TOKEN": TOKEN, "QKT_HOOK_SECRET": HOOK_KEY, "QKT_SLACK_URL": SLACK_URL}


def parse(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> Any:
    table = tomllib.loads(text).get("notify", {})
    return parse_notify_config(table, ENV if env is None else env, tmp_path)


def secret_file(tmp_path: Path, name: str, value: str, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def test_a_full_config_gives_typed_channels(tmp_path: Path) -> None:
    secret_file(tmp_path, "discord.url", "https://discord.example/api/webhooks/1/tok")
    config = parse(FULL, tmp_path)
    ops, hook, team, chat = config.channels
    assert config.summary_at == dt.time(21, 30)
    assert isinstance(ops, TelegramConfig)
    assert ops.token.reveal() == TOKEN and ops.chat_id == "123456" and ops.commands
    assert ops.command_chats == {"123456"} and ops.api_url == "https://api.telegram.org"
    assert ops.wants(EventKind.CRASH) and not ops.wants(EventKind.DEPLOY)
    assert isinstance(hook, WebhookConfig) and hook.secret is not None
    assert hook.secret.reveal() == HOOK_KEY
    # "*" is every kind but fills: those are asked for by name.
    assert hook.wants(EventKind.RISK) and not hook.wants(EventKind.FILL)
    assert isinstance(team, SlackConfig) and team.wants(EventKind.FILL)
    assert team.delivery.retries == 2 and team.delivery.timeout_s == 3.0
    assert isinstance(chat, DiscordConfig)
    assert chat.url.reveal() == "https://discord.example/api/webhooks/1/tok"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ops.chat_id = "1"  # type: ignore[misc]


def test_secrets_do_not_show_in_reprs_or_asdict(tmp_path: Path) -> None:
    secret_file(tmp_path, "discord.url", "https://discord.example/api/webhooks/1/tok")
    config = parse(FULL, tmp_path)
    shown = repr(config) + str(config) + repr([dataclasses.asdict(c) for c in config.channels])
    for secret in (TOKEN, HOOK_KEY, SLACK_URL, "webhooks/1/tok"):
        assert secret not in shown
    assert "env QKT_TG_TOKEN" in shown  # where it came from is fine to show


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[notify.x]\nkind = "pager"', {}, "notify.x.kind: unknown kind 'pager'"),
        ("[notify.x]\nurl = 'http://h/'", {}, "notify.x.kind: missing"),
        (
            '[notify.x]\nkind = "telegram"\ntoken_env = "NOPE"\nchat_id = 1',
            {},
            "notify.x.token_env: environment variable NOPE is not set",
        ),
        (
            '[notify.x]\nkind = "telegram"\nchat_id = 1',
            {},
            "notify.x.token_env: missing",
        ),
        (
            '[notify.x]\nkind = "telegram"\ntoken_env = "T"\n',
            {"T": "t"},
            "notify.x.chat_id: missing",
        ),
        ('[notify.x]\nkind = "webhook"\nurl = "ftp://h/x"', {}, "notify.x.url: bad URL"),
        ('[notify.x]\nkind = "webhook"\nurl = "not a url"', {}, "notify.x.url: bad URL"),
        ('[notify.x]\nkind = "webhook"', {}, "notify.x.url: missing"),
        (
            '[notify.x]\nkind = "slack"\nurl_env = "S"',
            {"S": "hooks.slack.example/secret-part"},
            "notify.x.url_env: bad URL",
        ),
        (
            '[notify.x]\nkind = "webhook"\nurl = "http://h/"\nevents = ["crash", "boom"]',
            {},
            "notify.x.events: unknown event 'boom'",
        ),
        (
            '[notify.x]\nkind = "telegram"\ntoken = "123:abc"\nchat_id = 1',
            {},
            "notify.x.token: secrets do not belong in the config file; use token_env",
        ),
        (
            '[notify.x]\nkind = "slack"\nurl = "https://hooks.slack.example/T/B/x"',
            {},
            "notify.x.url: secrets do not belong in the config file; use url_env",
        ),
        (
            '[notify.x]\nkind = "webhook"\nurl = "http://h/"\nsecret = "k"',
            {},
            "notify.x.secret: secrets do not belong in the config file",
        ),
        (
            '[notify.x]\nkind = "webhook"\nurl = "http://h/"\nchat_id = 1',
            {},
            "notify.x.chat_id: unknown setting for a webhook channel",
        ),
        (
            '[notify.x]\nkind = "webhook"\nurl = "http://h/"\nretries = -1',
            {},
            "notify.x.retries: expected a non-negative int",
        ),
        ('[notify]\nsummary_at = "25:99"', {}, "notify.summary_at: expected a UTC time"),
        ("[notify]\nchannels = 3", {}, "notify.channels: unknown setting"),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(NotifyConfigError) as caught:
        parse(toml, tmp_path, env)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    # A bad secret URL is reported without echoing it.
    assert "secret-part" not in str(caught.value)


def test_secret_files_must_be_private(tmp_path: Path) -> None:
    secret_file(tmp_path, "tg.token", TOKEN, mode=0o644)
    toml = '[notify.x]\nkind = "telegram"\ntoken_file = "tg.token"\nchat_id = 5'
    with pytest.raises(NotifyConfigError, match=r"notify.x.token_file: .* chmod 600"):
        parse(toml, tmp_path, {})
    (tmp_path / "tg.token").chmod(0o600)
    channel = parse(toml, tmp_path, {}).channels[0]
    assert channel.token.reveal() == TOKEN
    with pytest.raises(NotifyConfigError, match="notify.x.token_file: cannot read"):
        parse(toml.replace("tg.token", "missing.token"), tmp_path, {})


def test_load_reads_the_notify_part_of_the_daemon_config_file(tmp_path: Path) -> None:
    path = tmp_path / "daemon.toml"
    path.write_text(
        '[daemon]\nspawn = "fork"\n\n[notify.hook]\nkind = "webhook"\nurl = "http://h/x"\n'
    )
    (hook,) = load_notify_config(path, {}, tmp_path).channels
    assert isinstance(hook, WebhookConfig) and hook.url == "http://h/x"
    path.write_text("[daemon]\n")
    assert load_notify_config(path, {}, tmp_path).channels == ()
    path.write_text('[notify.hook]\nkind = "pager"\n')
    with pytest.raises(NotifyConfigError, match=r"^/.*daemon.toml: notify.hook.kind: unknown kind"):
        load_notify_config(path, {}, tmp_path)
    path.write_text("[notify\n")
    with pytest.raises(NotifyConfigError, match=r"daemon.toml: "):
        load_notify_config(path, {}, tmp_path)


def test_channel_health_serialises_without_secrets(tmp_path: Path) -> None:
    config = parse(FULL.replace('url_file = "discord.url"', 'url_env = "QKT_SLACK_URL"'), tmp_path)
    notifier = Notifier(config)
    text = orjson.dumps([h.to_json() for h in notifier.health()]).decode()
    assert '"state":"ok"' in text
    for secret in (TOKEN, HOOK_KEY, SLACK_URL):
        assert secret not in text
