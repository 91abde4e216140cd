"""Issue 14's acceptance for halts and risk: through a real daemon and real workers, an operator's
halt and resume and a risk limit's breach each arrive on a channel subscribed to them, naming
the strategy, and nothing else arrives there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.notify_receivers import notify_receiver
from tests.helpers import wait_until
from tests.supervisor.daemons import REAL_WORKER, running_daemon
from tests.supervisor.test_alerts_daemon import channel, events_at

pytestmark = pytest.mark.slow

FLIP = """\
STRATEGY {name} VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN POSITION.btc == 0 THEN BUY btc SIZING 0.01
    WHEN POSITION.btc > 0 THEN CLOSE btc
"""


def test_halt_resume_and_a_risk_breach_reach_their_channel(tmp_path: Path) -> None:
    with notify_receiver() as rx:
        config = tmp_path / "qkt.toml"
        config.write_text(channel("risk", rx.url("/hook/risk"), '["halt", "resume", "risk"]'))
        flip = tmp_path / "flip.qkt"
        flip.write_text(FLIP.format(name="flip"))
        args = ("--speed", "20", "--config", str(config))
        with running_daemon(tmp_path / "s", *args, worker=REAL_WORKER) as daemon:

            def seen() -> list[tuple[str, str | None]]:
                return [(e["event"], e["strategy"]) for e in events_at(rx, "/hook/risk")]

            calm = {"file": str(flip), "name": "calm", "max_orders_per_minute": "off"}
            assert daemon.post("/deploy", json=calm).status_code == 201
            assert daemon.post("/halt/calm", params={"reason": "lunch"}).status_code == 200
            assert daemon.post("/resume/calm").status_code == 200
            wait_until(lambda: ("resume", "calm") in seen(), 20, what="the resume alert")
            assert seen() == [("halt", "calm"), ("resume", "calm")]
            assert "lunch" in str(events_at(rx, "/hook/risk")[0]["fields"])

            busy = {"file": str(flip), "name": "busy", "max_orders_per_minute": "3"}
            assert daemon.post("/deploy", json=busy).status_code == 201
            wait_until(lambda: ("risk", "busy") in seen(), 40, what="the breach alert")
            (breach,) = [e for e in events_at(rx, "/hook/risk") if e["event"] == "risk"]
            assert "max_orders_per_minute" in str(breach["fields"])
            wait_until(lambda: ("halt", "busy") in seen(), 20, what="the breach's halt alert")
