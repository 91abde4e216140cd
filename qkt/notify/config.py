"""The `[notify.*]` tables of the daemon config, checked once into frozen channel configs.

    [notify]
    summary_at = "21:00"              # UTC; the daily summary (optional)

    [notify.ops]                      # one table per channel; the table name is the channel name
    kind = "telegram"                 # webhook | slack | discord | telegram
    token_env = "QKT_TG_TOKEN"        # or token_file = "secrets/tg.token" (mode 0600)
    chat_id = "123456"
    events = ["crash", "gave_up"]     # or ["*"] (every kind but fill)

Secrets (a bot token, an HMAC key, a Slack or Discord webhook URL, which is itself a credential)
come from the environment or a 0600 file, never from the TOML. Every mistake raises one
`NotifyConfigError` whose message starts with the key at fault.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from qkt.errors import UserError
from qkt.notify.events import EVENT_NAMES, WILDCARD_KINDS, EventKind
from qkt.notify.secret import Secret

KINDS: Final = ("discord", "slack", "telegram", "webhook")
TELEGRAM_API: Final = "https://api.telegram.org"
SIGNATURE_HEADER: Final = "X-Qkt-Signature"


class NotifyConfigError(UserError):
    """A `[notify]` setting is wrong; the message names the key (`notify.ops.kind: ...`)."""

    code = "bad_config"


@dataclass(frozen=True, slots=True)
class Delivery:
    """How hard one channel tries: retry budget, backoff, HTTP timeout, flood window."""

    retries: int = 5  # attempts after the first, then the message is dropped and counted
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0
    coalesce_s: float = 2.0  # events of one kind arriving within this are one message
    flood_s: float = 60.0  # per kind, at most `flood_burst` messages in this window;
    flood_burst: int = 2  # the events after them wait for the window and go as one message


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """What every channel has: its name (the table name), kind, event filter, delivery policy."""

    name: str
    events: frozenset[EventKind]
    delivery: Delivery

    @property
    def kind(self) -> str:
        raise NotImplementedError

    def wants(self, kind: EventKind) -> bool:
        """True if this channel subscribed to `kind` (test messages always go through)."""
        return kind is EventKind.TEST or kind in self.events


@dataclass(frozen=True, slots=True)
class WebhookConfig(ChannelConfig):
    """POST the event as JSON to `url`, signed with HMAC-SHA256 when a secret is set."""

    url: str
    secret: Secret | None
    signature_header: str

    @property
    def kind(self) -> str:
        return "webhook"


@dataclass(frozen=True, slots=True)
class SlackConfig(ChannelConfig):
    """A Slack incoming webhook (the URL is the credential)."""

    url: Secret

    @property
    def kind(self) -> str:
        return "slack"


@dataclass(frozen=True, slots=True)
class DiscordConfig(ChannelConfig):
    """A Discord channel webhook (the URL is the credential)."""

    url: Secret

    @property
    def kind(self) -> str:
        return "discord"


@dataclass(frozen=True, slots=True)
class TelegramConfig(ChannelConfig):
    """A Telegram bot writing to `chat_id`; with `commands`, it also takes operator commands."""

    token: Secret
    chat_id: str
    api_url: str
    commands: bool
    command_chats: frozenset[str]
    poll_timeout_s: float

    @property
    def kind(self) -> str:
        return "telegram"


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Every channel, the daily summary's UTC time, and where notify keeps its state."""

    channels: tuple[ChannelConfig, ...] = ()
    summary_at: dt.time | None = None
    state_dir: Path | None = None

    def channel(self, name: str) -> ChannelConfig:
        for channel in self.channels:
            if channel.name == name:
                return channel
        known = ", ".join(c.name for c in self.channels) or "none configured"
        raise NotifyConfigError(f"no notify channel {name!r} (channels: {known})")


_DEFAULTS: Final = Delivery()
# Keys each kind accepts besides the common ones; anything else is a typo worth an error.
_COMMON: Final = frozenset(
    {"kind", "events", "retries", "backoff_s", "backoff_max_s", "timeout_s", "coalesce_s"}
    | {"flood_s", "flood_burst"}
)
_KEYS: Final[dict[str, frozenset[str]]] = {
    "webhook": frozenset({"url", "secret_env", "secret_file", "signature_header"}),
    "slack": frozenset({"url_env", "url_file"}),
    "discord": frozenset({"url_env", "url_file"}),
    "telegram": frozenset(
        {"token_env", "token_file", "chat_id", "api_url", "commands", "command_chats"}
        | {"poll_timeout_s"}
    ),
}
# Keys that would put a secret in the file itself, and where it should come from instead.
_INLINE_SECRETS: Final[dict[str, dict[str, str]]] = {
    "webhook": {"secret": "secret_env or secret_file"},
    "slack": {"url": "url_env or url_file"},
    "discord": {"url": "url_env or url_file"},
    "telegram": {"token": "token_env or token_file"},
}


def parse_notify_config(
    table: Mapping[str, Any], env: Mapping[str, str], state_dir: Path
) -> NotifyConfig:
    """The `notify` table of a parsed TOML file -> `NotifyConfig`; NotifyConfigError naming the key.

    `env` is the environment secrets are read from; relative secret files are under `state_dir`.
    """
    channels: list[ChannelConfig] = []
    summary_at: dt.time | None = None
    for name, value in table.items():
        if isinstance(value, Mapping):
            channels.append(_channel(name, value, env, state_dir))
        elif name == "summary_at":
            summary_at = _utc_time(f"notify.{name}", value)
        else:
            raise NotifyConfigError(
                f"notify.{name}: unknown setting (channels are tables: [notify.{name}])"
            )
    return NotifyConfig(tuple(channels), summary_at, state_dir)


def load_notify_config(path: Path, env: Mapping[str, str], state_dir: Path) -> NotifyConfig:
    """The `[notify]` part of the TOML file at `path` (no channels if it has none).

    Errors read `FILE: notify.KEY: ...`. The daemon's own reader skips the `notify` section and
    leaves it to this function.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else type(error).__name__
        raise NotifyConfigError(f"{path}: cannot read: {reason}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise NotifyConfigError(f"{path}: {error}") from None
    table = raw.get("notify", {})
    try:
        if not isinstance(table, Mapping):
            raise NotifyConfigError("notify: must be a [notify] section")
        return parse_notify_config(table, env, state_dir)
    except NotifyConfigError as error:
        raise NotifyConfigError(f"{path}: {error.message}") from None


def _channel(
    name: str, table: Mapping[str, Any], env: Mapping[str, str], state_dir: Path
) -> ChannelConfig:
    at = f"notify.{name}"
    kind = table.get("kind")
    if kind not in KINDS:
        shown = "missing" if kind is None else f"unknown kind {kind!r}"
        raise NotifyConfigError(f"{at}.kind: {shown} (expected one of {', '.join(KINDS)})")
    for key in table:
        if key in _INLINE_SECRETS[kind]:
            raise NotifyConfigError(
                f"{at}.{key}: secrets do not belong in the config file; "
                f"use {_INLINE_SECRETS[kind][key]}"
            )
        if key not in _COMMON and key not in _KEYS[kind]:
            raise NotifyConfigError(f"{at}.{key}: unknown setting for a {kind} channel")
    events = _events(f"{at}.events", table.get("events", ["*"]))
    delivery = Delivery(
        retries=_number(table, at, "retries", int, _DEFAULTS.retries),
        backoff_s=_number(table, at, "backoff_s", float, _DEFAULTS.backoff_s),
        backoff_max_s=_number(table, at, "backoff_max_s", float, _DEFAULTS.backoff_max_s),
        timeout_s=_number(table, at, "timeout_s", float, _DEFAULTS.timeout_s),
        coalesce_s=_number(table, at, "coalesce_s", float, _DEFAULTS.coalesce_s),
        flood_s=_number(table, at, "flood_s", float, _DEFAULTS.flood_s),
        flood_burst=_number(table, at, "flood_burst", int, _DEFAULTS.flood_burst),
    )
    if kind == "webhook":
        url = _url(f"{at}.url", _text(table, at, "url"))
        secret = _secret(table, at, "secret", env, state_dir, required=False)
        header = str(table.get("signature_header", SIGNATURE_HEADER))
        return WebhookConfig(name, events, delivery, url, secret, header)
    if kind in ("slack", "discord"):
        hook = _secret(table, at, "url", env, state_dir, required=True)
        assert hook is not None
        _url(f"{at}.url_{'env' if 'url_env' in table else 'file'}", hook.reveal(), show=False)
        cls = SlackConfig if kind == "slack" else DiscordConfig
        return cls(name, events, delivery, hook)
    token = _secret(table, at, "token", env, state_dir, required=True)
    assert token is not None
    chat_id = _chat_id(f"{at}.chat_id", table.get("chat_id"))
    chats = table.get("command_chats", [chat_id])
    if not isinstance(chats, list) or not chats:
        raise NotifyConfigError(f"{at}.command_chats: expected a non-empty list of chat ids")
    commands = table.get("commands", False)
    if not isinstance(commands, bool):
        raise NotifyConfigError(f"{at}.commands: expected true or false")
    return TelegramConfig(
        name,
        events,
        delivery,
        token,
        chat_id,
        _url(f"{at}.api_url", str(table.get("api_url", TELEGRAM_API))).rstrip("/"),
        commands,
        frozenset(_chat_id(f"{at}.command_chats", c) for c in chats),
        _number(table, at, "poll_timeout_s", float, 30.0),
    )


def _events(at: str, value: Any) -> frozenset[EventKind]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NotifyConfigError(f'{at}: expected a list of event names or ["*"]')
    kinds: set[EventKind] = set()
    for name in value:
        if name == "*":
            kinds |= WILDCARD_KINDS
        elif name in EVENT_NAMES:
            kinds.add(EventKind(name))
        else:
            known = ", ".join(sorted(EVENT_NAMES))
            raise NotifyConfigError(f"{at}: unknown event {name!r} (known: {known}, or *)")
    return frozenset(kinds)


def _secret(
    table: Mapping[str, Any],
    at: str,
    what: str,
    env: Mapping[str, str],
    state_dir: Path,
    *,
    required: bool,
) -> Secret | None:
    env_key, file_key = f"{what}_env", f"{what}_file"
    if env_key in table and file_key in table:
        raise NotifyConfigError(f"{at}.{env_key}: give {env_key} or {file_key}, not both")
    if env_key in table:
        variable = _text(table, at, env_key)
        value = env.get(variable, "").strip()
        if not value:
            raise NotifyConfigError(f"{at}.{env_key}: environment variable {variable} is not set")
        return Secret(value, f"env {variable}")
    if file_key in table:
        path = Path(_text(table, at, file_key))
        path = path if path.is_absolute() else state_dir / path
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise NotifyConfigError(
                    f"{at}.{file_key}: {path} is readable by others; chmod 600 it"
                )
            value = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else type(error).__name__
            raise NotifyConfigError(f"{at}.{file_key}: cannot read {path}: {reason}") from None
        if not value:
            raise NotifyConfigError(f"{at}.{file_key}: {path} is empty")
        return Secret(value, f"file {path}")
    if required:
        raise NotifyConfigError(f"{at}.{env_key}: missing (or {file_key}); the {what} is needed")
    return None


def _url(at: str, url: str, *, show: bool = True) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = f" {url!r}" if show else ""
        raise NotifyConfigError(f"{at}: bad URL{shown}: expected http(s)://host/...")
    return url


def _text(table: Mapping[str, Any], at: str, key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise NotifyConfigError(f"{at}.{key}: {'missing' if value is None else 'expected text'}")
    return value


def _chat_id(at: str, value: Any) -> str:
    # Telegram chat ids are integers (negative for groups) or "@channelname"; TOML may hold either.
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value) == "":
        raise NotifyConfigError(f"{at}: {'missing' if value is None else 'expected a chat id'}")
    return str(value)


def _number(table: Mapping[str, Any], at: str, key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or (kind is int and not isinstance(value, int)) or value < 0:
        raise NotifyConfigError(f"{at}.{key}: expected a non-negative {kind.__name__}")
    return kind(value)


def _utc_time(at: str, value: Any) -> dt.time:
    try:
        if isinstance(value, dt.time):
            return value.replace(tzinfo=None)
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise NotifyConfigError(f'{at}: expected a UTC time like "21:00", got {value!r}') from None
