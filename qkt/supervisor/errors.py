"""The daemon's own failures, each a QktError so that every boundary maps it once."""

from __future__ import annotations

from qkt.errors import QktError, UserError


class DaemonRunningError(UserError):
    """Another daemon holds the state dir's lock."""

    code = "daemon_running"
    http_status = 409


class ConfigError(UserError):
    """A bad daemon flag or config file value."""

    code = "bad_config"


class WorkerStartError(QktError):
    """A worker exited, or never answered, before it was ready; the deploy left nothing behind."""

    code = "worker_failed"
    http_status = 502


class NoFreePortError(QktError):
    """Every port of `--worker-ports` is taken."""

    code = "no_free_port"
    http_status = 503


class BusyError(UserError):
    """The strategy is in a transition (starting, stopping) that the request cannot interrupt."""

    code = "busy"
    http_status = 409


class NotWarmError(UserError):
    """`deploy --require-warm` and the history a strategy needs cannot be had: nothing runs."""

    code = "not_warm"
    http_status = 409
