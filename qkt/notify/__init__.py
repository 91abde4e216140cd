"""Alerts to webhooks, Slack, Discord and Telegram; the daily summary; Telegram operator commands.

The daemon's side of it: `parse_notify_config` once at start, a `Notifier` it `publish`es
`Event`s to, a `SummaryScheduler` it ticks, and a `TelegramPoller` per `commands = true` channel
driving its `OperatorActions`. Nothing here imports the supervisor: the daemon plugs this in.
"""

from __future__ import annotations

from qkt.notify.channel import ChannelHealth, ChannelState
from qkt.notify.commands import CommandHandler, OperatorActions
from qkt.notify.config import (
    ChannelConfig,
    Delivery,
    DiscordConfig,
    NotifyConfig,
    NotifyConfigError,
    SlackConfig,
    TelegramConfig,
    WebhookConfig,
    load_notify_config,
    parse_notify_config,
)
from qkt.notify.events import Event, EventKind
from qkt.notify.notifier import Notifier
from qkt.notify.poller import TelegramPoller, offset_path
from qkt.notify.secret import Secret
from qkt.notify.summary import DaySummary, StrategyDay, SummaryScheduler
from qkt.notify.testsend import TestResult, run_test, send_test

__all__ = [
    "ChannelConfig",
    "ChannelHealth",
    "ChannelState",
    "CommandHandler",
    "DaySummary",
    "Delivery",
    "DiscordConfig",
    "Event",
    "EventKind",
    "Notifier",
    "NotifyConfig",
    "NotifyConfigError",
    "OperatorActions",
    "Secret",
    "SlackConfig",
    "StrategyDay",
    "SummaryScheduler",
    "TelegramConfig",
    "TelegramPoller",
    "TestResult",
    "WebhookConfig",
    "load_notify_config",
    "offset_path",
    "parse_notify_config",
    "run_test",
    "send_test",
]
