"""Delivery through real HTTP on 127.0.0.1: filters, floods, failures, rate limits, hangs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from qkt.notify import ChannelState, Event, EventKind, Notifier
from tests.fakes.notify_receivers import notify_receiver
from tests.fakes.telegram import fake_telegram
from tests.helpers import wait_until_async
from tests.notify.support import HOOK_KEY, TOKEN, config, run


def test_a_crash_reaches_the_subscribed_channels_only(tmp_path: Path) -> None:
    with notify_receiver() as rx, fake_telegram(TOKEN) as tg:
        cfg = config(
            tmp_path,
            {"SLACK": rx.url("/slack/T/B/x"), "DISCORD": rx.url("/discord/1/tok")},
            hook={
                "kind": "webhook",
                "url": rx.url("/hook/a"),
                "secret_env": "QKT_HOOK_KEY",
                "events": ["crash"],
            },
            team={"kind": "slack", "url_env": "SLACK", "events": ["deploy"]},
            chat={"kind": "discord", "url_env": "DISCORD", "events": ["*"]},
            ops={
                "kind": "telegram",
                "token_env": "QKT_TG_TOKEN",
                "chat_id": 77,
                "api_url": tg.base_url(),
                "events": ["crash", "gave_up"],
            },
        )

        async def scenario() -> None:
            notifier = Notifier(cfg)
            await notifier.start()
            notifier.publish(Event.crash("alpha", -9, ["boom: division by zero", "exiting"]))
            await wait_until_async(lambda: rx.posts("/hook/a") and rx.posts("/discord/1/tok"))
            await wait_until_async(lambda: tg.sent("77"))
            # The slack channel works (it gets the deploy), it just never heard of the crash.
            notifier.publish(Event.of(EventKind.DEPLOY, "beta"))
            await wait_until_async(lambda: rx.posts("/slack/T/B/x"))
            await notifier.aclose()

        run(scenario())
        (hook,) = rx.posts("/hook/a")
        body = hook.json()
        assert body["event"] == "crash" and body["strategy"] == "alpha"
        assert body["fields"] == {"exit_code": "-9"} and body["count"] == 1
        assert body["lines"] == ["boom: division by zero", "exiting"]
        assert body["time"].endswith("Z")
        mac = hmac.new(HOOK_KEY.encode(), hook.raw, hashlib.sha256).hexdigest()
        assert hook.headers["X-Qkt-Signature"] == f"sha256={mac}"
        # Discord subscribed to everything: the crash, then the deploy.
        discord, deploy = [p.json() for p in rx.posts("/discord/1/tok")]
        assert "beta deployed" in deploy["content"]
        assert "alpha crashed exit_code=-9" in discord["content"]
        assert "boom: division by zero" in discord["content"]
        assert discord["allowed_mentions"] == {"parse": []}
        (message,) = tg.sent("77")
        assert "alpha crashed" in message["text"] and "exiting" in message["text"]
        slack = [p.json()["text"] for p in rx.posts("/slack/T/B/x")]
        assert len(slack) == 1 and "beta deployed" in slack[0]


def test_a_burst_of_50_crashes_is_one_message_with_every_count(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        cfg = config(
            tmp_path, hook={"kind": "webhook", "url": rx.url("/hook/b"), "coalesce_s": 0.2}
        )

        async def scenario() -> Notifier:
            notifier = Notifier(cfg)
            await notifier.start()
            for i in range(50):
                notifier.publish(Event.crash("alpha" if i % 5 else "beta", -9, [f"line {i}"]))
            assert await notifier.flush(30)
            await notifier.aclose()
            return notifier

        notifier = run(scenario())
        bodies = [p.json() for p in rx.posts("/hook/b")]
        assert 1 <= len(bodies) <= 3
        assert sum(b["count"] for b in bodies) == 50
        assert sum(b["strategies"]["alpha"] for b in bodies) == 40
        assert sum(b["strategies"]["beta"] for b in bodies) == 10
        assert bodies[-1]["lines"] == ["line 49"]  # the latest in full
        (health,) = notifier.health()
        assert health.sent == len(bodies) and health.coalesced == 50 - len(bodies)
        assert health.dropped == 0 and health.pending == 0


def test_a_minute_of_crashes_is_a_few_messages_with_every_count(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        cfg = config(tmp_path, hook={"kind": "webhook", "url": rx.url("/hook/m"), "flood_s": 600})

        async def scenario() -> None:
            notifier = Notifier(cfg)
            await notifier.start()
            for i in range(50):  # one at a time, each after the previous one was handled
                notifier.publish(Event.crash(f"s{i % 7}", -9))
                if i < 2:
                    await wait_until_async(lambda: notifier.health()[0].pending == 0)
                else:
                    await asyncio.sleep(0.001)
            # Two messages went out (the burst), the flood gate holds the 48 others as one.
            await wait_until_async(lambda: len(rx.posts("/hook/m")) == 2)
            assert notifier.health()[0].pending == 48
            notifier.publish(Event.of(EventKind.DEPLOY, "other"))  # another kind is not held
            await wait_until_async(lambda: len(rx.posts("/hook/m")) == 3)
            await notifier.aclose()  # shutdown sends what the gate holds

        run(scenario())
        bodies = [p.json() for p in rx.posts("/hook/m")]
        assert [(b["event"], b["count"]) for b in bodies] == [
            ("crash", 1),
            ("crash", 1),
            ("deploy", 1),
            ("crash", 48),
        ]
        assert sum(sum(b["strategies"].values()) for b in bodies if b["event"] == "crash") == 50


def test_500s_then_recovery_delivers_and_counts_the_failures(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        cfg = config(tmp_path, hook={"kind": "webhook", "url": rx.url("/hook/c"), "retries": 5})
        rx.fail_next(3)

        async def scenario() -> Notifier:
            notifier = Notifier(cfg)
            await notifier.start()
            notifier.publish(Event.of(EventKind.HALT, "alpha", reason="max daily loss"))
            await wait_until_async(lambda: rx.posts("/hook/c"))
            await notifier.aclose()
            return notifier

        notifier = run(scenario())
        (health,) = notifier.health()
        assert health.state is ChannelState.OK
        assert (health.sent, health.failed, health.dropped) == (1, 3, 0)
        assert health.last_error == "500"
        assert rx.posts("/hook/c")[0].json()["fields"] == {"reason": "max daily loss"}


def test_an_outage_flood_arrives_after_recovery_with_no_count_lost(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        cfg = config(
            tmp_path, hook={"kind": "webhook", "url": rx.url("/hook/d"), "retries": 10_000}
        )
        rx.always(500)

        async def scenario() -> None:
            notifier = Notifier(cfg)
            await notifier.start()
            for i in range(20):
                notifier.publish(Event.of(EventKind.STALE, f"s{i % 4}", key="BYBIT:BTCUSDT:1m"))
                await wait_until_async(lambda n=i: rx.requests > n)  # failures keep coming
            health = notifier.health()[0]
            assert health.state is ChannelState.RETRYING
            assert health.pending == 20  # queued or in flight, all accounted for
            rx.always(None)
            assert await notifier.flush(30)
            await notifier.aclose()

        run(scenario())
        bodies = [p.json() for p in rx.posts("/hook/d")]
        assert sum(b["count"] for b in bodies) == 20
        assert len(bodies) <= 3  # the retries absorbed what arrived meanwhile


def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    with notify_receiver() as rx, fake_telegram(TOKEN) as tg:
        cfg = config(
            tmp_path,
            {"SLACK": rx.url("/slack/T/B/y")},
            team={"kind": "slack", "url_env": "SLACK"},
            ops={
                "kind": "telegram",
                "token_env": "QKT_TG_TOKEN",
                "chat_id": 5,
                "api_url": tg.base_url(),
            },
        )
        rx.rate_limit_next(1, 7.5)
        tg.rate_limit_next("sendMessage", 2, retry_after=13)

        async def scenario() -> None:
            notifier = Notifier(cfg, sleep=sleep)
            await notifier.start()
            notifier.publish(Event.of(EventKind.RISK, "alpha", limit="max_drawdown_pct"))
            await wait_until_async(lambda: rx.posts("/slack/T/B/y") and tg.sent("5"))
            await notifier.aclose()

        run(scenario())
        # Slack's Retry-After header, and Telegram's parameters.retry_after, twice.
        assert sorted(waits) == [7.5, 13.0, 13.0]
        assert "risk limit breached" in tg.sent("5")[0]["text"]


def test_a_hanging_receiver_never_blocks_publish(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        cfg = config(
            tmp_path,
            hook={"kind": "webhook", "url": rx.url("/hook/e"), "timeout_s": 0.3, "retries": 10_000},
        )
        rx.hang()

        async def scenario() -> Notifier:
            notifier = Notifier(cfg)
            await notifier.start()
            notifier.publish(Event.of(EventKind.DEPLOY, "alpha"))
            await wait_until_async(lambda: rx.requests >= 1)  # the first post is stuck
            for i in range(100):  # the daemon goes on publishing, unhindered
                notifier.publish(Event.of(EventKind.DEPLOY, f"s{i}"))
            await wait_until_async(lambda: notifier.health()[0].last_error == "timeout")
            assert notifier.health()[0].state is ChannelState.RETRYING
            rx.release()
            assert await notifier.flush(30)
            await notifier.aclose()
            return notifier

        notifier = run(scenario())
        assert sum(p.json()["count"] for p in rx.posts("/hook/e")) == 101
        assert notifier.health()[0].state is ChannelState.OK


def test_a_channel_that_keeps_failing_is_reported_not_retried_forever(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        cfg = config(tmp_path, hook={"kind": "webhook", "url": rx.url("/hook/f"), "retries": 2})
        rx.always(503)

        async def scenario() -> Notifier:
            notifier = Notifier(cfg)
            await notifier.start()
            notifier.publish(Event.of(EventKind.GAVE_UP, "alpha", restarts=5))
            await wait_until_async(lambda: notifier.health()[0].state is ChannelState.FAILING)
            assert await notifier.flush(10)
            health = notifier.health()[0]
            assert (health.failed, health.dropped, health.sent) == (3, 1, 0)
            assert rx.requests == 3  # one try and the two retries of its budget, then no more
            registry = CollectorRegistry(auto_describe=False)
            registry.register(notifier.collector())
            text = generate_latest(registry).decode()
            assert 'qkt_notify_state{channel="hook",kind="webhook",state="failing"} 1.0' in text
            assert 'qkt_notify_dropped_total{channel="hook",kind="webhook"} 1.0' in text
            assert 'qkt_notify_failed_total{channel="hook",kind="webhook"} 3.0' in text
            # The receiver comes back: the next event goes through and the channel is ok again.
            rx.always(None)
            notifier.publish(Event.of(EventKind.RESUME, "alpha"))
            await wait_until_async(lambda: rx.posts("/hook/f"))
            await wait_until_async(lambda: notifier.health()[0].state is ChannelState.OK)
            await notifier.aclose()
            return notifier

        run(scenario())
        assert [p.json()["event"] for p in rx.posts("/hook/f")] == ["resume"]


def test_publish_from_another_thread_and_with_garbage_never_raises(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        cfg = config(tmp_path, hook={"kind": "webhook", "url": rx.url("/hook/g")})

        async def scenario() -> None:
            notifier = Notifier(cfg)
            await notifier.start()
            notifier.publish(None)  # type: ignore[arg-type]
            assert notifier.lost == 1
            await asyncio.to_thread(notifier.publish, Event.daemon("start", detail="v1"))
            await wait_until_async(lambda: rx.posts("/hook/g"))
            await notifier.aclose()

        run(scenario())
        assert rx.posts("/hook/g")[0].json()["fields"] == {"what": "start", "detail": "v1"}
