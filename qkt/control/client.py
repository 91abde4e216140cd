"""ControlClient: the CLI's way to the daemon, found through `control.sock` or `control.port`.

It imports only the standard library's HTTP client and the typed records (no FastAPI, pydantic
or requests): every read-only command starts in tens of milliseconds.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import orjson

from qkt.control.transport import (
    Answer,
    Endpoint,
    Transport,
    TransportError,
    TransportTimeout,
)
from qkt.errors import NoDaemonError, QktError, UserError
from qkt.osproc import tcp_listener_uid
from qkt.paths import StateDir
from qkt.records import RecordError, decode, decode_list
from qkt.supervisor.records import (
    DaemonHealth,
    HaltResult,
    HubKey,
    ListEntry,
    NotifyChannel,
    NotifyTestResult,
    StopResult,
    StrategyStatus,
    parse_status,
)

if TYPE_CHECKING:
    from qkt.supervisor.figures import HistoryEntry, RemoveResult

_PROBE_TIMEOUT_S: Final = 3.0


class UntrustedDaemonError(UserError):
    """What answers on the daemon's port is not this user's: the token stays home."""

    code = "untrusted_daemon"


def _ours(path: Path) -> bool:
    """The socket file belongs to this user (the daemon's); another's is never spoken to."""
    try:
        return path.lstat().st_uid == os.geteuid()
    except OSError:
        return False


_TIMEOUT_S: Final = 30.0
_LONG_TIMEOUT_S: Final = 600.0  # many staged stops and deploys, each bounded daemon-side
_DEPLOY_TIMEOUT_S: Final = 180.0  # compile + spawn + the worker's readiness (bounded daemon-side)
SOCKET_NAME: Final = "control.sock"


class ControlError(QktError):
    """An error envelope from the daemon, as the QktError it was on the other side."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status
        self.remote_code = code


class ControlClient:
    """Talks to the daemon of one state dir; every failure is a QktError with a clear message."""

    def __init__(self, state: StateDir, endpoint: Endpoint, token: str) -> None:
        self.state = state
        self.endpoint = endpoint
        self.port = endpoint.port
        self._transport = Transport(endpoint, token)
        self._answered = False  # until the daemon has answered once, a refusal means "stale"

    @classmethod
    def connect(cls, state: StateDir, *, probe: bool = False) -> ControlClient:
        """Find the daemon: its Unix socket if something listens there, else control.port.

        No request is made here (each costs a command time): a port file that names nothing
        shows at the first request, as the same `no daemon running` error. With `probe`, ask
        `/health` now.
        """
        if state.root.exists():
            # A folder another user may write could hold their port file or socket, to be sent
            # our token: refuse it before reading anything in it.
            state.check_trusted()
        try:
            token = state.control_token.read_text().strip()
        except OSError:
            token = ""
        socket_path = state.root / SOCKET_NAME
        if socket_path.exists() and _ours(socket_path):
            endpoint = Endpoint(unix_path=str(socket_path))
            try:
                endpoint.open(_PROBE_TIMEOUT_S).close()
                return cls(state, endpoint, token)
            except OSError:
                pass  # a socket file left by a daemon that died: try the port
        port_file = state.control_port
        try:
            port = int(port_file.read_text().strip())
        except FileNotFoundError:
            raise NoDaemonError(
                f"no daemon running (no {port_file}); start one with `qkt daemon`"
            ) from None
        except (OSError, ValueError) as error:
            raise NoDaemonError(f"no daemon running ({port_file} is unreadable: {error})") from None
        owner = tcp_listener_uid(port)
        if owner is not None and owner != os.geteuid():
            raise UntrustedDaemonError(
                f"port {port} (from {port_file}) is held by a process of user {owner}, not by "
                "your daemon: not sending it your token; start the daemon again with `qkt daemon`"
            )
        client = cls(state, Endpoint(port=port), token)
        if probe and not client._healthy():
            raise client._gone()
        return client

    def _healthy(self) -> bool:
        try:
            answer = self._transport.request("GET", "/health", timeout=_PROBE_TIMEOUT_S)
            found = orjson.loads(answer.body) if answer.status == 200 else None
        except (TransportError, TransportTimeout, orjson.JSONDecodeError):
            return False
        self._answered = self._answered or answer.status == 200
        return isinstance(found, dict) and found.get("status") == "ok"

    def close(self) -> None:
        """Nothing to release: each request has its own connection."""

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routes ------------------------------------------------------------------------------

    def health(self) -> DaemonHealth:
        return decode(DaemonHealth, self._json("GET", "/health"))

    def deploy(self, file: str, name: str | None = None, **options: Any) -> ListEntry:
        """`POST /deploy`; options: balance, fee_bps, slippage_bps, sim, speed, seed, and the
        name-reuse choices replace, keep_state, resume, fresh."""
        body = {"file": file, "name": name, **{k: v for k, v in options.items() if v is not None}}
        return decode(
            ListEntry, self._json("POST", "/deploy", body=body, timeout=_DEPLOY_TIMEOUT_S)
        )

    def list(self) -> builtins.list[ListEntry]:
        return decode_list(ListEntry, self._json("GET", "/list"))

    def status(self, name: str) -> StrategyStatus:
        """One strategy's status: its worker's, or the daemon's record of it."""
        return parse_status(self._json("GET", f"/status/{segment(name)}"))

    def status_all(self) -> builtins.list[StrategyStatus]:
        found = self._json("GET", "/status")
        if not isinstance(found, builtins.list):
            raise RecordError(f"GET /status: expected an array, got {type(found).__name__}")
        return [parse_status(item) for item in found]

    def hub(self) -> builtins.list[HubKey]:
        return decode_list(HubKey, self._json("GET", "/hub"))

    def notify(self) -> builtins.list[NotifyChannel]:
        """`GET /notify`: each alert channel's health."""
        return decode_list(NotifyChannel, self._json("GET", "/notify"))

    def notify_test(self, channel: str | None = None) -> builtins.list[NotifyTestResult]:
        """`POST /notify/test`: a test message through each channel (or one)."""
        params = {"channel": channel} if channel is not None else {}
        return decode_list(NotifyTestResult, self._json("POST", "/notify/test", params=params))

    def logs(
        self, name: str, lines: int = 200, since: str | None = None, grep: str | None = None
    ) -> str:
        params = log_params(lines, since, grep)
        return self._send("GET", f"/logs/{segment(name)}", params=params).text()

    def follow_logs(
        self, name: str, lines: int = 200, since: str | None = None, grep: str | None = None
    ) -> Iterator[bytes]:
        """The log's last lines, then every chunk appended, until the daemon ends the stream."""
        params = {**log_params(lines, since, grep), "follow": "true"}
        path = f"/logs/{segment(name)}"
        try:
            status, chunks = self._transport.stream("GET", path, params=params)
        except TransportError:
            raise self._gone() from None
        if status >= 400:
            body = b"".join(chunks)
            raise error_of(Answer(status, "application/json", body))
        return chunks

    def stop(
        self, name: str, *, flatten: bool = False, timeout_ms: int | None = None
    ) -> StopResult:
        params: dict[str, Any] = {"flatten": "true" if flatten else "false"}
        if timeout_ms is not None:
            params["timeout"] = timeout_ms
        wait = _TIMEOUT_S + (timeout_ms or 5000) / 1000
        answer = self._json("POST", f"/stop/{segment(name)}", params=params, timeout=wait)
        return decode(StopResult, answer)

    def stop_all(
        self, *, flatten: bool = False, timeout_ms: int | None = None
    ) -> builtins.list[StopResult]:
        """`POST /stop`: every deployed strategy."""
        params: dict[str, Any] = {"flatten": "true" if flatten else "false"}
        if timeout_ms is not None:
            params["timeout"] = timeout_ms
        answer = self._json("POST", "/stop", params=params, timeout=_LONG_TIMEOUT_S)
        return decode_list(StopResult, answer)

    def restart(
        self, name: str | None, *, timeout_ms: int | None = None
    ) -> builtins.list[ListEntry]:
        """`POST /restart/{name}`, or `POST /restart` (every strategy) when `name` is None."""
        params = {} if timeout_ms is None else {"timeout": timeout_ms}
        if name is None:
            answer = self._json("POST", "/restart", params=params, timeout=_LONG_TIMEOUT_S)
            return decode_list(ListEntry, answer)
        path = f"/restart/{segment(name)}"
        return [decode(ListEntry, self._json("POST", path, params=params, timeout=_LONG_TIMEOUT_S))]

    def remove(self, name: str, *, purge: bool = False) -> RemoveResult:
        """`POST /rm/{name}`: forget a stopped strategy, archiving (or deleting) its books."""
        params = {"purge": "true" if purge else "false"}
        from qkt.supervisor.figures import RemoveResult  # not loaded by every command

        return decode(RemoveResult, self._json("POST", f"/rm/{segment(name)}", params=params))

    def list_all(self) -> builtins.list[HistoryEntry]:
        """`GET /list/all`: deployed strategies and stopped ones not removed."""
        from qkt.supervisor.figures import HistoryEntry

        return decode_list(HistoryEntry, self._json("GET", "/list/all"))

    def risk_verb(
        self, verb: str, name: str | None = None, **params: str | bool | None
    ) -> HaltResult:
        """`POST /halt|/resume|/kill[/{name}]` (name None: every strategy); params as query
        parameters (`reason`, `flatten`), None left out."""
        path = f"/{verb}" if name is None else f"/{verb}/{segment(name)}"
        query = {
            key: ("true" if value else "false") if isinstance(value, bool) else value
            for key, value in params.items()
            if value is not None
        }
        return decode(HaltResult, self._json("POST", path, params=query, timeout=_DEPLOY_TIMEOUT_S))

    def shutdown(self) -> None:
        """`POST /shutdown`: accepted (202); the daemon stops its workers, then exits."""
        self._send("POST", "/shutdown")

    def metrics(self) -> str:
        return self._send("GET", "/metrics").text()

    # -- plumbing ----------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request (`body` is JSON-encoded) and parse the JSON answer."""
        answer = self._send(method, path, **kwargs)
        try:
            return orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise RecordError(f"{method} {path}: the daemon's answer is not JSON") from None

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = _TIMEOUT_S,
    ) -> Answer:
        data = None if body is None else orjson.dumps(body)
        try:
            answer = self._transport.request(
                method, path, params=params, body=data, timeout=timeout
            )
        except TransportError:
            raise self._gone() from None
        except TransportTimeout:
            raise QktError(f"the daemon did not answer {method} {path} in time") from None
        self._answered = True
        if answer.status >= 400:
            raise error_of(answer)
        return answer

    def _gone(self) -> NoDaemonError:
        if self._answered:
            return NoDaemonError(
                f"no daemon running (the daemon on {self.endpoint.describe()} went away)"
            )
        if self.endpoint.port is not None:
            return NoDaemonError(
                f"no daemon running (nothing answers on port {self.endpoint.port} named in "
                f"{self.state.control_port}: a stale file from a daemon that died?); start one "
                "with `qkt daemon`"
            )
        return NoDaemonError(f"no daemon running (nothing answers on {self.endpoint.describe()})")


def error_of(answer: Answer) -> ControlError:
    """The daemon's error envelope as a ControlError (any other body as an `http_error`)."""
    try:
        error = orjson.loads(answer.body)["error"]
        code, message = str(error.pop("code")), str(error.pop("message"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return ControlError(
            answer.status,
            "http_error",
            f"the daemon answered {answer.status}: {answer.text()[:200]}",
        )
    return ControlError(answer.status, code, message, **error)


def log_params(lines: int, since: str | None, grep: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"lines": lines}
    if since is not None:
        params["since"] = since
    if grep is not None:
        params["grep"] = grep
    return params


def segment(name: str) -> str:
    """`name` as one path segment (a name with `/` must reach the daemon to be refused)."""
    return quote(name, safe="")
