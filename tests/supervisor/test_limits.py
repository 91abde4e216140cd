"""Out of open files, ports or disk: a named error saying what to do, not an OSError."""

from __future__ import annotations

import errno

from qkt.supervisor.errors import OutOfResourcesError, resource_error


def test_running_out_of_descriptors_ports_or_disk_is_named() -> None:
    files = resource_error(OSError(errno.EMFILE, "Too many open files"))
    assert isinstance(files, OutOfResourcesError) and files.http_status == 503
    assert "out of open files" in files.message and "ulimit -n" in files.message
    ports = resource_error(OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"))
    assert ports is not None and "ip_local_port_range" in ports.message
    disk = resource_error(OSError(errno.ENOSPC, "No space left on device", "/s/deployments.json"))
    assert disk is not None and disk.message == "no space left on device (/s/deployments.json)"
    assert resource_error(OSError(errno.ENOENT, "No such file or directory")) is None
