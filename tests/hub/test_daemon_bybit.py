"""Through a real daemon, real workers and the fake Bybit (REST history + websocket): five
deploys on one key make one history fetch and all five are warm; a dead websocket shows as
`stale` in `qkt list` and `status`, alerts go out, and after the reconnect nothing is lost or
doubled; `--require-warm` refuses a key without history and changes nothing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.bybit_exchange import FakeBybit, fake_bybit, walk_rows
from tests.fakes.notify_receivers import NotifyReceiver, notify_receiver
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon

pytestmark = pytest.mark.slow

MINUTE = 60_000
KEY = "BYBIT:BTCUSDT:1m"
EMA_50 = """\
STRATEGY {name} VERSION 1
SYMBOLS btc = BYBIT:{symbol} EVERY 1m
RULES
    WHEN btc.close > EMA(btc.close, 50) AND POSITION.btc == 0 THEN BUY btc SIZING 0.01
"""
NAMES = [f"s{i}" for i in range(5)]


def config(tmp_path: Path, fake: FakeBybit, rx: NotifyReceiver) -> Path:
    file = tmp_path / "qkt.toml"
    file.write_text(
        f'[bybit]\nspot_url = "{fake.spot_url}"\nlinear_url = "{fake.linear_url}"\n'
        f'rest_url = "{fake.rest_url}"\n\n'
        f'[notify.feeds]\nkind = "webhook"\nurl = "{rx.url("/hook/feeds")}"\n'
        'events = ["stale", "live"]\ncoalesce_s = 0\nflood_burst = 100\n'
    )
    return file


def source(tmp_path: Path, name: str, symbol: str = "BTCUSDT") -> Path:
    path = tmp_path / f"{name}.qkt"
    path.write_text(EMA_50.format(name=name, symbol=symbol))
    return path


def listed(daemon: RunningDaemon) -> str:
    result = daemon.cli("list")
    assert result.returncode == 0, result.stderr
    return result.stdout


def status(daemon: RunningDaemon, name: str) -> dict[str, Any]:
    reply = daemon.get(f"/status/{name}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def hub_line(daemon: RunningDaemon, key: str = KEY) -> dict[str, Any]:
    lines: list[dict[str, Any]] = daemon.get("/hub").json()
    return next(line for line in lines if line["key"] == key)


def test_five_deploys_share_one_fetch_then_a_dead_websocket_is_stale_and_heals(
    tmp_path: Path,
) -> None:
    now = int(time.time() * 1000) // MINUTE * MINUTE
    # 600 closed candles, then ten minutes to come: REST never serves a candle before it closes
    # (its end is clamped to the wall clock), so history ends at the last closed minute.
    rows = walk_rows(now - 600 * MINUTE, 610)
    with fake_bybit() as fake, notify_receiver() as rx:
        fake.add_klines("BTCUSDT", rows)
        args = ("--config", str(config(tmp_path, fake, rx)))
        with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
            files = [source(tmp_path, name) for name in NAMES]
            with ThreadPoolExecutor(5) as pool:
                results = list(pool.map(lambda f: daemon.cli("deploy", str(f), timeout=120), files))
            assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
            assert len(fake.rest_requests) == 1  # one history fetch for the five of them
            for name in NAMES:
                body = wait_until(
                    lambda n=name: (s := status(daemon, n))["warm"] and s, timeout=30, what="warm"
                )
                (feed,) = body["feeds"]
                assert feed["source"] == "bybit-rest" and feed["missing"] == 0
                assert feed["history"] == "warm" and body["warming"] is None
            assert "stale" not in listed(daemon)

            fake.stop_websocket()  # the feed reconnects: every strategy on the key is stale
            wait_until(lambda: listed(daemon).count("running (stale)") == 5, timeout=120)
            assert status(daemon, "s0")["stale"] is True
            assert 'qkt_hub_key_stale{key="BYBIT:BTCUSDT:1m"} 1.0' in daemon.get("/metrics").text
            stale = wait_until(lambda: [p.json() for p in rx.posts("/hook/feeds")], timeout=20)
            assert stale[0]["event"] == "stale" and stale[0]["fields"]["key"] == KEY
            assert stale[0]["fields"]["strategies"] == ", ".join(NAMES)
            before = hub_line(daemon)

            fake.start_websocket()
            wait_until(lambda: "kline.1.BTCUSDT" in fake.subscribed(), timeout=60)
            # The candle of this minute (if minutes passed since the backfill, the hub fetches
            # the ones between to close the gap: in order, none twice).
            live = next(r for r in rows if r[0] == int(time.time() * 1000) // MINUTE * MINUTE)
            fake.push_kline("BTCUSDT", *live)
            after = wait_until(
                lambda: (
                    (line := hub_line(daemon))["last_close_ts"] > before["last_close_ts"] and line
                ),
                timeout=30,
                what="the live candle",
            )
            new = after["seq"] - before["seq"]
            assert new >= 1 and after["last_close_ts"] - before["last_close_ts"] == new * MINUTE
            wait_until(lambda: "stale" not in listed(daemon), timeout=30, what="live in list")
            events = wait_until(
                lambda: [p.json()["event"] for p in rx.posts("/hook/feeds")][1:], timeout=20
            )
            assert events[0] == "live"
            for name in NAMES:
                counted = wait_until(
                    lambda n=name: (
                        status(daemon, n)["candles"].get(KEY) == new and status(daemon, n)
                    ),
                    timeout=30,
                    what="every new candle in each worker",
                )
                assert counted["last_candle_ts"][KEY] == live[0]


def test_require_warm_refuses_a_key_without_history_and_changes_nothing(tmp_path: Path) -> None:
    now = int(time.time() * 1000) // MINUTE * MINUTE
    with fake_bybit() as fake, notify_receiver() as rx:
        fake.add_klines("BTCUSDT", walk_rows(now - 100 * MINUTE, 100))
        args = ("--config", str(config(tmp_path, fake, rx)))
        with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:
            nope = source(tmp_path, "nope", symbol="NOPEUSDT")
            refused = daemon.cli("deploy", str(nope), "--require-warm")
            assert refused.returncode == 1
            (line,) = refused.stderr.strip().splitlines()
            assert line.startswith("qkt: error: nope is not warm") and "NOPEUSDT" in line
            assert daemon.get("/list").json() == [] and daemon.get("/hub").json() == []

            assert daemon.cli("deploy", str(nope)).returncode == 0  # without it: warms live
            assert "running (warming)" in listed(daemon)
            warming = status(daemon, "nope")["warming"]
            assert "candles missing on BYBIT:NOPEUSDT:1m" in warming
            assert "Not supported symbols" in warming
