"""The daemon config's `[risk]` (daemon-wide) and `[risk.default]` (per strategy) sections.

Each value is checked by the engine's own parser for its flag (`qkt.engine.limits`), so the
config file, `qkt deploy` and the API refuse the same mistakes with the same words. Money and
percent may be written as TOML numbers or strings (`max_daily_loss = 500`, `"500"`, `"off"`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from qkt.engine import (
    LIMIT_FLAGS,
    PortfolioLimits,
    parse_leverage,
    parse_margin,
    parse_max_daily_loss,
    parse_max_drawdown_pct,
)
from qkt.errors import QktError
from qkt.records import to_json
from qkt.supervisor.deployments import Deployment

SUBSECTIONS: Final = frozenset({"risk.default"})
LIMIT_NAMES: Final = tuple(flag[2:].replace("-", "_") for flag in LIMIT_FLAGS)


@dataclass(frozen=True, slots=True)
class RiskSettings:
    """`[risk]` and `[risk.default]` (docs/risk.md)."""

    portfolio: PortfolioLimits = field(default_factory=PortfolioLimits)
    flatten: bool = False  # a daemon-wide breach kills with --flatten instead of halting
    check_interval_s: float = 1.0  # how often the daemon reads its workers' equity
    defaults: dict[str, str] = field(default_factory=dict)  # limit flag values by name
    leverage: str = "1"
    margin: bool = True


def parsed_by(parse: Callable[[str], object]) -> Callable[[Any], str | None]:
    """A config check that runs a flag's parser: None if it accepts the text, else why not."""

    def check(value: Any) -> str | None:
        try:
            parse(str(value))
        except QktError as error:
            return f"is wrong: {error.message}"
        return None

    return check


def limit_parser(name: str) -> Callable[[str], object]:
    """The engine's parser of limit `name` (`max_daily_loss`)."""
    return LIMIT_FLAGS["--" + name.replace("_", "-")]


def risk_settings(settings: Mapping[str, Any]) -> RiskSettings:
    """`RiskSettings` from checked `{"risk.key": value}` settings."""
    daily = settings.get("risk.max_daily_loss")
    drawdown = settings.get("risk.max_drawdown_pct")
    portfolio = PortfolioLimits(
        max_daily_loss=None if daily is None else parse_max_daily_loss(daily),
        max_drawdown_pct=None if drawdown is None else parse_max_drawdown_pct(drawdown),
    )
    defaults = {
        name: str(settings[f"risk.default.{name}"])
        for name in LIMIT_NAMES
        if f"risk.default.{name}" in settings
    }
    leverage = settings.get("risk.default.leverage")
    margin = settings.get("risk.default.margin")
    return RiskSettings(
        portfolio=portfolio,
        flatten=bool(settings.get("risk.flatten", False)),
        check_interval_s=float(settings.get("risk.check_interval_s", 1.0)),
        defaults=defaults,
        leverage="1" if leverage is None else str(parse_leverage(str(leverage))),
        margin=True if margin is None else parse_margin(str(margin)),
    )


def risk_spec_fields(deployment: Deployment, risk: RiskSettings) -> dict[str, Any]:
    """The `WorkerSpec` risk fields of a deployment: its own flags over `[risk.default]`, and
    the halt the daemon recorded (re-applied by a worker whose journal holds none)."""
    halt = deployment.halt
    return {
        "limits": {**risk.defaults, **deployment.limits},
        "leverage": risk.leverage if deployment.leverage is None else deployment.leverage,
        "margin": risk.margin if deployment.margin is None else deployment.margin,
        "halt": None if halt is None else to_json(halt),
    }
