"""The daemon's alert wiring in-process: the daily summary on an injected clock from the
workers' figures, feed events naming their readers, chat actions, and the config it reads."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qkt.hub import FeedEvent
from qkt.market.models import CandleKey
from qkt.notify import Event, NotifyConfigError, parse_notify_config
from qkt.paths import StateDir
from qkt.records import decode
from qkt.supervisor.alerts import Alerts
from qkt.supervisor.chatops import ChatActions
from qkt.supervisor.config import load_config
from qkt.supervisor.dayfigures import StrategyFigures
from qkt.supervisor.errors import ConfigError
from qkt.supervisor.figures import LastFigures
from qkt.supervisor.handle import WorkerState
from qkt.supervisor.records import RunningStatus
from tests.fakes.notify_receivers import NotifyReceiver, notify_receiver
from tests.helpers import wait_until_async

KEY = "SIM:BTCUSDT:1m"
FAST = {"coalesce_s": 0, "backoff_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 2}


def status(
    name: str, equity: str, trades: int, realized: str = "0", last: dict[str, Any] | None = None
) -> RunningStatus:
    """A running worker's `/status` with the figures the summary reads."""
    return decode(
        RunningStatus,
        {
            "strategy": name, "version": 1, "name": name, "pid": 1, "state": "running",
            "started_at": "2026-05-08T00:00:00.000Z", "uptime_ms": 5, "file": f"/s/{name}.qkt",
            "source_hash": "ab", "start_balance": "10000", "balance": equity, "equity": equity,
            "realized": realized, "unrealized": "0", "total_pnl": "0", "fees": "0",
            "positions": [], "open_orders": [], "trades": trades, "last_trade": last,
            "keys": [KEY], "last_candle_ts": {}, "warm": True, "candles": {},
            "warmup_candles": 0, "fee_bps": "0", "slippage_bps": "0", "fill_at": "close",
            "sim": True, "subscriber": None,
            "events": {"last_id": 0, "subscribers": 0, "dropped": 0},
            "restarts": 0, "port": 4000, "file_changed": False,
        },
    )  # fmt: skip


@dataclass
class FakeDeployment:
    balance: str = "10000"


@dataclass
class FakeHandle:
    name: str
    state: WorkerState = WorkerState.RUNNING
    keys: tuple[CandleKey, ...] = (CandleKey.parse(KEY),)
    trades: int | None = None  # the trade count of its last beat
    started_at_ms: int | None = None
    deployment: FakeDeployment = field(default_factory=FakeDeployment)


@dataclass
class FakeRegistry:
    statuses: dict[str, RunningStatus] = field(default_factory=dict)
    stored: dict[str, LastFigures] = field(default_factory=dict)  # in the heartbeat files
    beats: dict[str, int] = field(default_factory=dict)  # trade counts of the last beats
    asked: list[str] = field(default_factory=list)

    def handles(self) -> list[FakeHandle]:
        return [FakeHandle(name, trades=self.beats.get(name)) for name in sorted(self.statuses)]

    async def status_of(self, name: str) -> RunningStatus:
        self.asked.append(name)
        return self.statuses[name]

    def read_figures(self) -> dict[str, LastFigures]:
        return dict(self.stored)


def stored(equity: str, trades: int, realized: str = "0") -> LastFigures:
    """Figures as a worker stores them in its heartbeat file."""
    return LastFigures(equity, realized, "0", realized, trades, True, False, {}, 0, "10000")


@dataclass
class FakeDaemon:
    registry: FakeRegistry = field(default_factory=FakeRegistry)
    halts: Any = None


def hooks(rx: NotifyReceiver, tmp_path: Path, **extra: Any) -> Any:
    table: dict[str, Any] = {
        "all": {"kind": "webhook", "url": rx.url("/hook/all"), "events": ["*"], **FAST},
        "crashes": {"kind": "webhook", "url": rx.url("/hook/crash"), "events": ["crash"], **FAST},
        **extra,
    }
    return parse_notify_config(table, {}, tmp_path)


def test_the_daily_summary_carries_each_strategys_day_on_an_injected_clock(
    tmp_path: Path,
) -> None:
    now = [dt.datetime(2026, 5, 8, 20, 59, 58, tzinfo=dt.UTC)]
    with notify_receiver() as rx:
        config = hooks(rx, tmp_path, summary_at="21:00")

        async def scenario() -> None:
            daemon = FakeDaemon()
            daemon.registry.statuses = {"alpha": status("alpha", "10000", 0)}
            alerts = Alerts(config, clock=lambda: now[0])
            await alerts.start(daemon)  # type: ignore[arg-type]
            try:
                await wait_until_async(lambda: alerts.figures.summary(now[0].date()).strategies)
                daemon.registry.statuses["alpha"] = status("alpha", "10250.5", 4, "250.5")
                now[0] = dt.datetime(2026, 5, 8, 21, 0, 1, tzinfo=dt.UTC)
                await wait_until_async(lambda: rx.posts("/hook/all"), timeout=10)
            finally:
                await alerts.aclose()

        asyncio.run(scenario())
        (post,) = rx.posts("/hook/all")
        body = post.json()
        assert body["event"] == "summary" and body["fields"]["day"] == "2026-05-08"
        alpha = next(line for line in body["lines"] if line.startswith("alpha"))
        assert "equity 10,250.50" in alpha and "today +250.50" in alpha and "trades 4" in alpha
        assert rx.posts("/hook/crash") == []  # not subscribed to summaries


def test_feed_events_become_stale_and_live_alerts_that_name_the_readers(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        config = hooks(rx, tmp_path)

        async def scenario() -> None:
            daemon = FakeDaemon()
            daemon.registry.statuses = {"alpha": status("alpha", "1", 0)}
            alerts = Alerts(config)
            await alerts.start(daemon)  # type: ignore[arg-type]
            alerts.on_feed(FeedEvent(KEY, True, "feed reconnecting", 95_000, 1_000))
            alerts.on_feed(FeedEvent(KEY, False, "live again", 10, 2_000))
            await wait_until_async(lambda: len(rx.posts("/hook/all")) == 2)
            await alerts.aclose()

        asyncio.run(scenario())
        stale, live = (post.json() for post in rx.posts("/hook/all"))
        assert stale["event"] == "stale" and stale["fields"]["key"] == KEY
        assert stale["fields"]["strategies"] == "alpha" and stale["fields"]["silent_s"] == "95"
        assert live["event"] == "live" and live["fields"]["strategies"] == "alpha"


def test_fills_are_sent_only_to_a_channel_that_names_them(tmp_path: Path) -> None:
    trade = {
        "id": 2, "order_id": 2, "ts": 1, "broker": "SIM", "symbol": "BTCUSDT", "side": "sell",
        "qty": "0.01", "price": "20001.5", "fee": "0", "realized": "1", "position": "0",
        "role": "taker", "rule": 1,
    }  # fmt: skip
    with notify_receiver() as rx:
        fills = {"kind": "webhook", "url": rx.url("/hook/fills"), "events": ["fill"], **FAST}
        config = hooks(rx, tmp_path, fills=fills)

        async def scenario() -> None:
            daemon = FakeDaemon()
            daemon.registry.statuses = {"alpha": status("alpha", "1", 0)}
            alerts = Alerts(config)
            await alerts.start(daemon)  # type: ignore[arg-type]
            await alerts.gather()
            daemon.registry.statuses = {"alpha": status("alpha", "1", 2, last=trade)}
            await alerts.gather()
            await wait_until_async(lambda: rx.posts("/hook/fills"))
            await alerts.aclose()

        asyncio.run(scenario())
        (fill,) = (post.json() for post in rx.posts("/hook/fills"))
        assert fill["event"] == "fill" and fill["strategy"] == "alpha"
        assert fill["fields"] == {
            "symbol": "BTCUSDT", "side": "sell", "qty": "0.01", "price": "20001.5", "fills": "2"
        }  # fmt: skip
        assert rx.posts("/hook/all") == []  # "*" leaves fills out


def test_figures_come_from_the_heartbeats_and_a_status_only_for_a_new_fill(
    tmp_path: Path,
) -> None:
    """A thousand strategies must not cost a thousand `/status` requests a minute for the
    summary, or every 2 s for fills: the figures are read from the heartbeat files, and a worker
    is asked only when its beat's trade count grew (its fill is in its `/status`)."""
    trade = {
        "id": 2, "order_id": 2, "ts": 1, "broker": "SIM", "symbol": "BTCUSDT", "side": "buy",
        "qty": "0.01", "price": "20000", "fee": "0", "realized": "0", "position": "0.01",
        "role": "taker", "rule": 1,
    }  # fmt: skip
    today = dt.datetime(2026, 5, 8, 12, tzinfo=dt.UTC)
    with notify_receiver() as rx:
        fills = {"kind": "webhook", "url": rx.url("/hook/fills"), "events": ["fill"], **FAST}
        config = hooks(rx, tmp_path, fills=fills)

        async def scenario() -> None:
            daemon = FakeDaemon()
            registry = daemon.registry
            registry.statuses = {
                "alpha": status("alpha", "10250.5", 1, "250.5", last=trade),
                "beta": status("beta", "1", 0),
            }
            registry.stored = {"alpha": stored("10250.5", 0, "250.5"), "beta": stored("990", 0)}
            registry.beats = {"alpha": 0, "beta": 0}
            alerts = Alerts(config, clock=lambda: today)
            await alerts.start(daemon)  # type: ignore[arg-type]
            await alerts.gather()
            await alerts.gather()
            assert registry.asked == []  # everything from the heartbeats
            rows = {row.name: row for row in alerts.figures.summary(today.date()).strategies}
            assert rows["alpha"].equity == Decimal("10250.5")
            assert rows["alpha"].realized == Decimal("250.5")
            assert rows["beta"].equity == Decimal(990)
            registry.beats["alpha"] = 1  # its next beat: one more trade
            await alerts.gather()
            # Only the one that filled, for its fill (the alerts' own 2 s round may ask too).
            assert set(registry.asked) == {"alpha"}
            await wait_until_async(lambda: rx.posts("/hook/fills"))
            await alerts.aclose()

        asyncio.run(scenario())
        (fill,) = (post.json() for post in rx.posts("/hook/fills"))
        assert fill["strategy"] == "alpha" and fill["fields"]["price"] == "20000"


def test_the_summary_counts_each_strategys_halts_of_the_day(tmp_path: Path) -> None:
    """Its halts column was always 0: no worker's /status has such a count. The daemon sees
    every halt as an event (by an operator, a strategy's limit, a daemon-wide limit)."""
    now = [dt.datetime(2026, 5, 8, 9, tzinfo=dt.UTC)]
    with notify_receiver() as rx:
        alerts = Alerts(hooks(rx, tmp_path), clock=lambda: now[0])
        alerts.figures.take("alpha", StrategyFigures("10000", "0", 0), None, "10000")
        alerts.figures.take("beta", StrategyFigures("10000", "0", 0), None, "10000")
        alerts.emit(Event.halt("alpha", "max_daily_loss 100 breached: lost 101"))
        alerts.emit(Event.resume("alpha"))
        alerts.emit(Event.halt("alpha", "halted by the operator"))
        halts = {row.name: row.halts for row in alerts.figures.summary(now[0].date()).strategies}
        assert halts == {"alpha": 2, "beta": 0}
        now[0] += dt.timedelta(days=1)  # a new UTC day counts from zero
        alerts.emit(Event.halt("beta", "halted by the operator"))
        halts = {row.name: row.halts for row in alerts.figures.summary(now[0].date()).strategies}
        assert halts == {"alpha": 0, "beta": 1}


def test_chat_halt_and_resume_go_to_the_halting_service() -> None:
    calls: list[tuple[Any, ...]] = []

    class Halts:
        async def halt(self, name: str | None, reason: str, by: str) -> None:
            calls.append(("halt", name, reason, by))

        async def resume(self, name: str | None, by: str) -> None:
            calls.append(("resume", name, by))

        async def kill(self, name: str | None, flatten: bool, by: str) -> None:
            calls.append(("kill", name, flatten, by))

    async def scenario() -> None:
        actions = ChatActions(FakeDaemon(halts=Halts()))  # type: ignore[arg-type]
        assert await actions.halt(None, "operator") == "halted every strategy"
        assert await actions.resume(None) == "resumed every strategy"
        assert await actions.kill(True) == "killed every strategy and flattened its positions"

    asyncio.run(scenario())
    assert calls == [
        ("halt", None, "operator", "telegram"),
        ("resume", None, "telegram"),
        ("kill", None, True, "telegram"),
    ]


def test_the_daemon_config_hands_its_notify_tables_to_qkt_notify(tmp_path: Path) -> None:
    file = tmp_path / "qkt.toml"
    file.write_text(
        '[sim]\nseed = 3\n\n[notify]\nsummary_at = "21:30"\n\n'
        '[notify.ops]\nkind = "telegram"\ntoken_env = "TG"\nchat_id = 5\nevents = ["crash"]\n'
    )
    config = load_config(StateDir(tmp_path / "s"), file, env={"TG": "1:x"})
    assert config.feed.seed == 3
    assert [c.name for c in config.notify.channels] == ["ops"]
    assert config.notify.summary_at == dt.time(21, 30)
    assert load_config(StateDir(tmp_path / "s"), None).notify.channels == ()
    waits = load_config(StateDir(tmp_path / "s"), None, {"daemon.history_wait_s": 5})
    assert waits.history_wait_s == 5.0


@pytest.mark.parametrize(
    ("table", "names"),
    [
        ('[notify.ops]\nkind = "pager"\n', "notify.ops.kind: unknown kind 'pager'"),
        ('[notify.ops]\nkind = "telegram"\ntoken_env = "NOPE"\nchat_id = 1\n', "token_env"),
        ('[notify.hook]\nkind = "webhook"\nurl = "ftp://x"\n', "notify.hook.url: bad URL"),
    ],
)
def test_a_bad_notify_table_is_one_error_naming_its_key(
    tmp_path: Path, table: str, names: str
) -> None:
    file = tmp_path / "qkt.toml"
    file.write_text(table)
    with pytest.raises(NotifyConfigError) as caught:
        load_config(StateDir(tmp_path / "s"), file, env={})
    assert names in caught.value.message and "\n" not in caught.value.message
    assert caught.value.message.startswith(str(file))


def test_other_sections_are_still_checked_key_by_key(tmp_path: Path) -> None:
    file = tmp_path / "qkt.toml"
    file.write_text('[notify.hook]\nkind = "webhook"\nurl = "http://x/"\n[sim]\nspede = 2\n')
    with pytest.raises(ConfigError, match="unknown setting sim.spede"):
        load_config(StateDir(tmp_path / "s"), file, env={})
