"""One HTTP request per message, per kind of channel, classified into a typed `Answer`.

An Answer says what the service answered in words safe to print: it never holds the URL, the
token or the exception text (httpx puts the URL, and so a Telegram token or a Slack webhook
credential, into its messages).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from qkt.notify.config import (
    ChannelConfig,
    DiscordConfig,
    SlackConfig,
    TelegramConfig,
    WebhookConfig,
)
from qkt.notify.pending import Digest
from qkt.notify.render import discord_body, slack_body, telegram_body, text, webhook_body

MAX_RETRY_AFTER_S: Final = 600.0  # a service asking for longer is treated as this


@dataclass(frozen=True, slots=True)
class Answer:
    """What one delivery attempt got: success, or why not and whether to try again."""

    ok: bool
    detail: str  # "200", "429 retry after 3s", "timeout", ... (printable, secret-free)
    status: int | None = None
    retry_after_s: float | None = None
    permanent: bool = False  # the service refused the message itself: retrying cannot help
    body: Any = None  # the parsed JSON answer, when there is one (Telegram's `result`)


async def send(channel: ChannelConfig, client: httpx.AsyncClient, digest: Digest) -> Answer:
    """Deliver `digest` through `channel` once."""
    if isinstance(channel, TelegramConfig):
        return await telegram_call(
            client, channel, "sendMessage", telegram_body(channel.chat_id, text(digest))
        )
    if isinstance(channel, WebhookConfig):
        raw = orjson.dumps(webhook_body(digest))
        headers = {"Content-Type": "application/json"}
        if channel.secret is not None:
            mac = hmac.new(channel.secret.reveal().encode(), raw, hashlib.sha256).hexdigest()
            headers[channel.signature_header] = f"sha256={mac}"
        return await _post(client, channel.url, raw, headers, channel.delivery.timeout_s)
    if isinstance(channel, SlackConfig | DiscordConfig):
        body = slack_body(digest) if isinstance(channel, SlackConfig) else discord_body(digest)
        headers = {"Content-Type": "application/json"}
        return await _post(
            client, channel.url.reveal(), orjson.dumps(body), headers, channel.delivery.timeout_s
        )
    raise TypeError(f"no sender for {type(channel).__name__}")


async def telegram_call(
    client: httpx.AsyncClient,
    channel: TelegramConfig,
    method: str,
    body: dict[str, Any],
    *,
    timeout_s: float | None = None,
) -> Answer:
    """Call Bot API `method`; the answer's body is its `result` when `ok`."""
    url = f"{channel.api_url}/bot{channel.token.reveal()}/{method}"
    headers = {"Content-Type": "application/json"}
    timeout = channel.delivery.timeout_s if timeout_s is None else timeout_s
    answer = await _post(client, url, orjson.dumps(body), headers, timeout)
    if not isinstance(answer.body, dict):
        return answer
    reply: dict[str, Any] = answer.body
    if reply.get("ok") is True:
        return Answer(True, answer.detail, answer.status, body=reply.get("result"))
    parameters = reply.get("parameters") or {}
    retry_after = _seconds(parameters.get("retry_after")) or answer.retry_after_s
    code = reply.get("error_code", answer.status)
    description = str(reply.get("description", ""))[:200]
    return Answer(
        False,
        f"{code} {description}".strip(),
        answer.status,
        retry_after,
        answer.permanent and retry_after is None,
    )


async def _post(
    client: httpx.AsyncClient, url: str, raw: bytes, headers: dict[str, str], timeout_s: float
) -> Answer:
    try:
        response = await client.post(url, content=raw, headers=headers, timeout=timeout_s)
    except httpx.TimeoutException:
        return Answer(False, "timeout")
    except httpx.HTTPError as error:
        # The class name only: the message would carry the URL.
        return Answer(False, f"no answer ({type(error).__name__})")
    status = response.status_code
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        return Answer(True, str(status), status, body=body)
    retry_after = _seconds(response.headers.get("Retry-After"))
    if retry_after is None and isinstance(body, dict):
        retry_after = _seconds(body.get("retry_after"))  # Discord's JSON 429 body
    detail = f"{status} retry after {retry_after:g}s" if retry_after is not None else str(status)
    permanent = 400 <= status < 500 and status not in (408, 429)
    return Answer(False, detail, status, retry_after, permanent, body)


def _seconds(value: Any) -> float | None:
    """A Retry-After / retry_after value in seconds (delta-seconds only), capped."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
