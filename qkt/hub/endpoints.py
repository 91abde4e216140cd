"""Where a hub listens: ipc:// sockets in the state dir, or tcp://127.0.0.1 when ipc can't."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import zmq

from qkt.hub.errors import HubError
from qkt.paths import StateDir

Transport = Literal["auto", "ipc", "tcp"]

# sun_path holds 108 bytes on Linux, one of them the terminating NUL; libzmq says 107.
IPC_PATH_MAX: Final[int] = int(getattr(zmq, "IPC_PATH_MAX_LEN", 107) or 107)
IPC_SCHEME: Final = "ipc://"


@dataclass(frozen=True, slots=True)
class HubEndpoints:
    """The bound endpoints of one hub; a worker's spawn spec carries them."""

    pub: str  # PUB (XPUB) socket: closed candles, sync markers
    snapshot: str  # ROUTER socket: snapshot and gap-repair requests

    def to_json(self) -> dict[str, str]:
        return {"pub": self.pub, "snapshot": self.snapshot}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubEndpoints:
        """Rebuild from `to_json()`; raise ValueError if a field is missing or not a string."""
        pub, snap = data.get("pub"), data.get("snapshot")
        if not isinstance(pub, str) or not isinstance(snap, str):
            raise ValueError(f"hub endpoints need 'pub' and 'snapshot' strings, got {data!r}")
        return cls(pub, snap)


def ipc_fits(path: Path) -> bool:
    """True if `path` is short enough to be a unix socket address."""
    return len(str(path).encode()) <= IPC_PATH_MAX


def plan_endpoints(state: StateDir, transport: Transport, tcp_host: str) -> HubEndpoints:
    """The endpoints to bind (tcp ones with port `*`, to be resolved after bind)."""
    paths = (state.hub_socket, state.hub_snapshot_socket)
    use_ipc = transport == "ipc" or (transport == "auto" and all(ipc_fits(p) for p in paths))
    if use_ipc:
        for path in paths:
            if not ipc_fits(path):
                raise HubError(
                    f"ipc path {path} is {len(str(path).encode())} bytes, over the unix socket "
                    f"limit of {IPC_PATH_MAX}; use a shorter state dir or transport 'tcp'"
                )
        return HubEndpoints(IPC_SCHEME + str(paths[0]), IPC_SCHEME + str(paths[1]))
    return HubEndpoints(f"tcp://{tcp_host}:*", f"tcp://{tcp_host}:*")


def ipc_path(endpoint: str) -> Path | None:
    """The socket file of an ipc:// endpoint, else None."""
    return Path(endpoint[len(IPC_SCHEME) :]) if endpoint.startswith(IPC_SCHEME) else None


def claim_ipc_path(path: Path) -> None:
    """Make sure nobody listens on `path` before binding it.

    libzmq unlinks an existing socket file on bind, so a second hub on the same state dir would
    silently steal the first one's subscribers. A stale file (nobody listening) is fine.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as error:
        if error.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            return  # left behind by a hub that is gone
        raise HubError(f"cannot check hub socket {path}: {error}") from None
    finally:
        probe.close()
    raise HubError(f"another CandleHub is already listening on {path}")
