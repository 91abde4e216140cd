"""The daemon config's `[risk]` and `[risk.default]` (docs/risk.md): read, checked by the
flags' own parsers, and handed to each worker under its deploy's own flags."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from qkt.paths import StateDir
from qkt.supervisor.config import load_config
from qkt.supervisor.deployments import Deployment
from qkt.supervisor.errors import ConfigError
from qkt.supervisor.riskconfig import risk_spec_fields
from qkt.worker.record import HaltRecord

GOOD = """\
[risk]
max_daily_loss = 500
max_drawdown_pct = "12.5"
flatten = true
check_interval_s = 0.5

[risk.default]
max_daily_loss = "250"
max_orders_per_minute = 30
max_loss_streak = "off"
leverage = 3
margin = "on"
"""


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qkt.toml"
    path.write_text(text)
    return path


def test_risk_sections_are_read_and_handed_to_workers(tmp_path: Path) -> None:
    config = load_config(StateDir(tmp_path), config_file(tmp_path, GOOD))
    risk = config.risk
    assert risk.portfolio.max_daily_loss == Decimal(500)
    assert risk.portfolio.max_drawdown_pct == Decimal("12.5")
    assert risk.flatten and risk.check_interval_s == 0.5 and risk.leverage == "3"
    assert risk.defaults == {
        "max_daily_loss": "250",
        "max_orders_per_minute": "30",
        "max_loss_streak": "off",
    }
    own = Deployment("a", "/s/a.qkt", limits={"max_daily_loss": "100"}, margin=False)
    fields = risk_spec_fields(own, risk)
    assert fields["limits"] == {
        "max_daily_loss": "100",  # the deploy's flag wins
        "max_orders_per_minute": "30",
        "max_loss_streak": "off",
    }
    assert fields["leverage"] == "3" and fields["margin"] is False and fields["halt"] is None
    halted = own.halted(HaltRecord("operator", "why", "operator", 5, False))
    assert risk_spec_fields(halted, risk)["halt"] == {
        "kind": "operator",
        "reason": "why",
        "by": "operator",
        "since_ms": 5,
        "killed": False,
    }
    assert Deployment.from_json(halted.to_json()) == halted  # deployments.json keeps it


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[risk]\nmax_daily_loss = -5\n", "risk.max_daily_loss is wrong: --max-daily-loss: -5"),
        ("[risk]\nmax_drawdown_pct = 101\n", "must be a percent above 0 and at most 100"),
        ("[risk]\nmax_position_notional = 5\n", "unknown setting risk.max_position_notional"),
        ("[risk.default]\nmax_loss_streak = 2.5\n", "is not a whole number"),
        ("[risk.default]\nleverage = 1000\n", "--leverage: 1000 must be from 1 to 100"),
        ("[risk.default]\nstop_loss = 5\n", "unknown setting risk.default.stop_loss"),
        ("[risk]\nflatten = 'yes'\n", "risk.flatten must be a bool"),
    ],
)
def test_a_bad_risk_setting_names_itself(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError, match="qkt.toml") as caught:
        load_config(StateDir(tmp_path), config_file(tmp_path, text))
    assert words in caught.value.message


def test_a_deployment_refuses_a_bad_limit(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="--max-daily-loss: 0 must be above 0"):
        Deployment("a", "/s/a.qkt", limits={"max_daily_loss": "0"})
