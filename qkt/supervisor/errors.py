"""The daemon's own failures, each a QktError so that every boundary maps it once."""

from __future__ import annotations

import errno
import resource

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


class OutOfResourcesError(QktError):
    """The box (or this process's limits) is out of something a worker needs: open files,
    local ports, disk space. Named, with what to do, instead of an OSError's traceback."""

    code = "out_of_resources"
    http_status = 503


def resource_error(error: OSError) -> OutOfResourcesError | None:
    """`error` in words if it is the box running out of something, else None."""
    where = f" ({error.filename})" if error.filename else ""
    if error.errno in (errno.EMFILE, errno.ENFILE):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return OutOfResourcesError(
            f"out of open files{where}: this daemon may hold {soft} (ulimit -n; hard limit "
            f"{hard}); raise it before starting the daemon (docs/performance.md, Scale)"
        )
    if error.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE) and not error.filename:
        return OutOfResourcesError(
            "out of local ports: widen net.ipv4.ip_local_port_range, or give the workers a "
            "range with --worker-ports (docs/performance.md, Scale)"
        )
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutOfResourcesError(f"no space left on device{where}")
    return None


class NotWarmError(UserError):
    """`deploy --require-warm` and the history a strategy needs cannot be had: nothing runs."""

    code = "not_warm"
    http_status = 409
