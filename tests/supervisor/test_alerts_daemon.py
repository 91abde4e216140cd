"""Alerts from a real daemon to local receivers: crashes reach the subscribed channels only,
with the exit code and the log's last lines; a failing, rate-limiting or hanging receiver costs
the daemon nothing; `qkt daemon status` and `/metrics` report each channel; bad config is one
line; `qkt notify test` prints what each channel answered."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.notify_receivers import NotifyReceiver, notify_receiver
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, qkt, running_daemon, strategy

pytestmark = pytest.mark.slow

FAST = "coalesce_s = 0\nbackoff_s = 0.05\nbackoff_max_s = 0.2\ntimeout_s = 5\nflood_burst = 100\n"


def channel(name: str, url: str, events: str, extra: str = "") -> str:
    return f'[notify.{name}]\nkind = "webhook"\nurl = "{url}"\nevents = {events}\n{FAST}{extra}\n'


def events_at(rx: NotifyReceiver, path: str) -> list[dict[str, Any]]:
    return [post.json() for post in rx.posts(path)]


def kinds(rx: NotifyReceiver, path: str) -> list[str]:
    return [body["event"] for body in events_at(rx, path)]


def test_a_killed_worker_is_a_crash_alert_on_the_subscribed_channels_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with notify_receiver() as rx:
        monkeypatch.setenv("QKT_TEST_SLACK", rx.url("/slack/ops"))
        config = tmp_path / "qkt.toml"
        config.write_text(
            channel("crashes", rx.url("/hook/crash"), '["crash"]')
            + channel("life", rx.url("/hook/life"), '["deploy", "stop", "daemon"]')
            + '[notify.team]\nkind = "slack"\nurl_env = "QKT_TEST_SLACK"\nevents = ["crash"]\n'
            + FAST
        )
        source = strategy(tmp_path, "alpha")
        with running_daemon(tmp_path / "s", "--config", str(config), worker=REAL_WORKER) as d:
            wait_until(lambda: "daemon" in kinds(rx, "/hook/life"), what="daemon start alert")
            assert d.cli("deploy", str(source)).returncode == 0
            wait_until(lambda: "deploy" in kinds(rx, "/hook/life"), what="deploy alert")
            pid = d.wait_state("alpha", "running")["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: rx.posts("/hook/crash"), timeout=20, what="crash alert")
            (crash,) = events_at(rx, "/hook/crash")
            assert crash["strategy"] == "alpha" and crash["fields"]["exit_code"] == "-9"
            assert crash["lines"], "the crash alert carries the log's last lines"
            slack = wait_until(lambda: rx.posts("/slack/ops"), what="slack crash alert")
            assert "qkt: alpha crashed" in slack[0].json()["text"]

            d.wait_state("alpha", "running", timeout=60)  # restarted
            report = d.cli("daemon", "status", "--json")
            assert report.returncode == 0, report.stderr
            table = d.cli("daemon", "status").stdout
            assert "CHANNEL" in table and "crashes" in table and "team" in table
            metrics = d.get("/metrics").text
            assert 'qkt_notify_sent_total{channel="crashes",kind="webhook"} 1.0' in metrics
            assert 'qkt_hub_key_stale{key="SIM:BTCUSDT:1s"}' in metrics
            tested = d.cli("notify", "test", "crashes")  # through the daemon's own channels
            assert tested.returncode == 0 and "crashes" in tested.stdout, tested.stderr
            assert kinds(rx, "/hook/crash") == ["crash", "test"]
            assert d.cli("stop", "alpha").returncode == 0
            d.stop()
        assert "crash" not in kinds(rx, "/hook/life")  # not subscribed
        assert kinds(rx, "/hook/life") == ["daemon", "deploy", "stop", "daemon"]
        assert events_at(rx, "/hook/life")[-1]["fields"]["what"] == "stop"


def test_failing_rate_limiting_and_hanging_receivers_do_not_slow_the_daemon(
    tmp_path: Path,
) -> None:
    with notify_receiver() as rx:
        config = tmp_path / "qkt.toml"
        config.write_text(
            channel("flaky", rx.url("/hook/flaky"), '["deploy"]', "retries = 20\n")
            + channel("down", rx.url("/hook/down"), '["deploy"]', "retries = 1\n")
        )
        rx.rate_limit_next(1, 0.2, path="/hook/flaky")
        rx.fail_next(2, path="/hook/flaky")
        rx.fail_next(100, path="/hook/down")
        with running_daemon(tmp_path / "s", "--config", str(config)) as d:
            assert d.cli("deploy", str(strategy(tmp_path, "one"))).returncode == 0
            wait_until(lambda: rx.posts("/hook/flaky"), what="delivery after 429 and 500s")
            (down,) = [c for c in d.get("/notify").json() if c["name"] == "down"]
            down = wait_until(
                lambda: next(
                    c for c in d.get("/notify").json() if c["name"] == "down" and c["dropped"]
                ),
                what="the down channel reported failing",
            )
            assert down["state"] == "failing" and down["last_error"]
            assert "failing" in d.cli("daemon", "status").stdout

            rx.hang()  # every post now hangs: deploys and stops answer all the same
            for name in ("two", "three"):
                deployed = d.cli("deploy", str(strategy(tmp_path, name)), timeout=60)
                assert deployed.returncode == 0, deployed.stderr
            assert d.cli("stop", "two", timeout=60).returncode == 0
            rx.release()
            # Held through the outage, the two deploys leave as one message counting both.
            wait_until(
                lambda: {"two", "three"} <= _named(rx, "/hook/flaky"),
                timeout=30,
                what="the held deploy alerts after the receiver recovers",
            )


def _named(rx: NotifyReceiver, path: str) -> set[str]:
    """Every strategy the messages on `path` counted (a coalesced one names several)."""
    return {name for body in events_at(rx, path) for name in body["strategies"]}


def test_bad_notify_config_refuses_to_start_with_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "qkt.toml"
    for table, key in (
        ('[notify.ops]\nkind = "pager"\n', "notify.ops.kind"),
        ('[notify.ops]\nkind = "telegram"\ntoken_env = "QKT_NO_SUCH"\nchat_id = 1\n', "token_env"),
        ('[notify.hook]\nkind = "webhook"\nurl = "not a url"\n', "notify.hook.url"),
    ):
        config.write_text(table)
        result = qkt("daemon", "--state-dir", str(tmp_path / "s"), "--config", str(config))
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("qkt: error: ") and key in line
        assert not (tmp_path / "s" / "control.port").exists()


def test_notify_test_prints_what_each_channel_answered(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        config = tmp_path / "qkt.toml"
        config.write_text(
            channel("good", rx.url("/hook/good"), '["crash"]')
            + channel("bad", rx.url("/hook/bad"), '["crash"]')
        )
        rx.fail_next(1, status=404, path="/hook/bad")
        result = qkt("notify", "test", "--config", str(config))
        assert result.returncode == 1
        assert "good" in result.stdout and "bad" in result.stdout and "failed" in result.stdout
        assert "did not go through bad" in result.stderr
        assert [p.json()["event"] for p in rx.posts("/hook/good")] == ["test"]
        one = qkt("notify", "test", "good", "--config", str(config))
        assert one.returncode == 0 and "bad" not in one.stdout
        unknown = qkt("notify", "test", "nope", "--config", str(config))
        assert unknown.returncode == 1 and "no notify channel 'nope'" in unknown.stderr


def test_the_daily_summary_reaches_its_channel_with_the_running_strategies(
    tmp_path: Path,
) -> None:
    # The daemon's clock is the wall's here (the summary on an injected clock is in
    # test_alerts.py): the summary is due a little after the deploy.
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    with notify_receiver() as rx:
        config = tmp_path / "qkt.toml"
        config.write_text(
            f'[notify]\nsummary_at = "{due:%H:%M:%S}"\n\n'
            + channel("daily", rx.url("/hook/daily"), '["summary"]')
        )
        with running_daemon(tmp_path / "s", "--config", str(config), worker=REAL_WORKER) as d:
            assert d.cli("deploy", str(strategy(tmp_path, "alpha"))).returncode == 0
            (post,) = wait_until(lambda: rx.posts("/hook/daily"), timeout=90, what="summary")
        body = post.json()
        assert body["event"] == "summary" and body["fields"]["strategies"] == "1"
        found = re.match(r"alpha  equity ([\d,.]+)  today ([+-][\d,.]+)", body["lines"][0])
        assert found is not None, body["lines"]
        equity, today = (Decimal(x.replace(",", "")) for x in found.groups())
        assert equity - today == Decimal("10000.00")  # deployed today: the day began at 10,000
        assert body["lines"][-1].startswith("total")
