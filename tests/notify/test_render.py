"""Message bodies: the services' size limits, flood wording, and events that carry no strategy."""

from __future__ import annotations

import pickle

import pytest

from qkt.notify import Event, EventKind, Secret
from qkt.notify.pending import MAX_NAMES, OTHERS, Digest, Pending
from qkt.notify.render import (
    TITLES,
    discord_body,
    slack_body,
    telegram_body,
    text,
    webhook_body,
)


def test_long_crash_logs_fit_each_service() -> None:
    digest = Digest.of(Event.crash("alpha", 1, [f"line {i} " + "x" * 80 for i in range(200)]))
    assert len(discord_body(digest)["content"]) == 2000
    assert len(slack_body(digest)["text"]) <= 3000
    telegram = telegram_body("5", text(digest))["text"]
    assert len(telegram) == 4096 and telegram.endswith("\n…")
    assert len(webhook_body(digest)["lines"]) == 200  # the webhook gets everything


def test_a_flood_names_its_strategies_and_never_grows_without_bound() -> None:
    pending = Pending()
    for i in range(500):
        pending.add(Event.crash(f"s{i}", -9, time_ms=1_000 + i))
    pending.add(Event.stale("BYBIT:BTCUSDT:1m", silent_s=90))
    crash, stale = pending.take()
    assert crash.count == 500 and len(crash.by_strategy) == MAX_NAMES + 1
    assert crash.by_strategy[OTHERS] == 500 - MAX_NAMES
    assert sum(crash.by_strategy.values()) == 500
    message = text(crash)
    assert message.startswith("qkt: crashed x500 (1970-01-01T00:00:01Z .. 1970-01-01T00:00:01Z)")
    assert "latest: s499 crashed exit_code=-9" in message
    assert text(stale).startswith("qkt: feed stale key=BYBIT:BTCUSDT:1m silent_s=90")


def test_a_secret_cannot_be_pickled_or_printed() -> None:
    secret = Secret("tok", "env X")
    assert "tok" not in repr(secret) + str(secret) + f"{secret}"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_every_kind_has_a_title_and_constructors_fill_the_documented_fields() -> None:
    assert set(TITLES) == set(EventKind)
    assert dict(Event.risk("a", "max_daily_loss", "-501.20").fields) == {
        "limit": "max_daily_loss",
        "value": "-501.20",
    }
    assert dict(Event.stop("a", flatten=True).fields) == {"flatten": "True"}
    assert Event.kill(None, flatten=False).strategy is None
    assert dict(Event.gave_up("a", 5).fields) == {"restarts": "5"}
    assert text(Digest.of(Event.resume("a"))).startswith("qkt: a resumed\n")
