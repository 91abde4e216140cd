"""The daemon: registry of worker processes, spawn, staged stop, restart policy, shutdown."""
