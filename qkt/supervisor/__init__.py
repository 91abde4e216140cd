"""The daemon: registry of worker processes, spawn, staged stop, restart policy, shutdown.

Import from the modules (`qkt.supervisor.daemon.Daemon`, `...registry.Registry`, ...): this
package's `__init__` stays empty so that the fork server, which runs `qkt.supervisor.forkserver`,
imports only the worker's code and not the daemon's.
"""
