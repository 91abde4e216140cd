"""ControlClient: the CLI's way to the daemon (requests), found through `control.port`."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import quote

import requests

from qkt.errors import NoDaemonError, QktError
from qkt.paths import StateDir
from qkt.records import RecordError, decode, decode_list
from qkt.supervisor.records import (
    DaemonHealth,
    HubKey,
    ListEntry,
    NotifyChannel,
    NotifyTestResult,
    StopResult,
    StrategyStatus,
    parse_status,
)

_PROBE_TIMEOUT_S: Final = 3.0
_TIMEOUT_S: Final = 30.0
_DEPLOY_TIMEOUT_S: Final = 180.0  # compile + spawn + the worker's readiness (bounded daemon-side)
_HOST: Final = "127.0.0.1"


class ControlError(QktError):
    """An error envelope from the daemon, as the QktError it was on the other side."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status
        self.remote_code = code


class ControlClient:
    """Talks to the daemon of one state dir; every failure is a QktError with a clear message."""

    def __init__(self, state: StateDir, port: int, token: str) -> None:
        self.state = state
        self.port = port
        self._base = f"http://{_HOST}:{port}"
        self._session = requests.Session()
        self._session.trust_env = False  # loopback only: no proxies from the environment
        self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def connect(cls, state: StateDir) -> ControlClient:
        """Read control.port and control.token and check that a daemon answers there."""
        port_file = state.control_port
        try:
            port = int(port_file.read_text().strip())
        except FileNotFoundError:
            raise NoDaemonError(
                f"no daemon running (no {port_file}); start one with `qkt daemon`"
            ) from None
        except (OSError, ValueError) as error:
            raise NoDaemonError(f"no daemon running ({port_file} is unreadable: {error})") from None
        try:
            token = state.control_token.read_text().strip()
        except OSError:
            token = ""
        client = cls(state, port, token)
        try:
            health = client._session.get(f"{client._base}/health", timeout=_PROBE_TIMEOUT_S)
            ok = health.status_code == 200 and health.json().get("status") == "ok"
        except (requests.RequestException, ValueError, AttributeError):
            ok = False
        if not ok:
            client.close()
            raise NoDaemonError(
                f"no daemon running (nothing answers on port {port} named in {port_file}: "
                "a stale file from a daemon that died?); start one with `qkt daemon`"
            )
        return client

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routes ------------------------------------------------------------------------------

    def health(self) -> DaemonHealth:
        return decode(DaemonHealth, self._json("GET", "/health"))

    def deploy(self, file: str, name: str | None = None, **options: Any) -> ListEntry:
        """`POST /deploy`; options: balance, fee_bps, slippage_bps, sim, speed, seed."""
        body = {"file": file, "name": name, **{k: v for k, v in options.items() if v is not None}}
        return decode(
            ListEntry, self._json("POST", "/deploy", json=body, timeout=_DEPLOY_TIMEOUT_S)
        )

    def list(self) -> builtins.list[ListEntry]:
        return decode_list(ListEntry, self._json("GET", "/list"))

    def status(self, name: str) -> StrategyStatus:
        """One strategy's status: its worker's, or the daemon's record of it."""
        return parse_status(self._json("GET", f"/status/{_segment(name)}"))

    def status_all(self) -> builtins.list[StrategyStatus]:
        found = self._json("GET", "/status")
        if not isinstance(found, builtins.list):
            raise RecordError(f"GET /status: expected an array, got {type(found).__name__}")
        return [parse_status(item) for item in found]

    def hub(self) -> builtins.list[HubKey]:
        return decode_list(HubKey, self._json("GET", "/hub"))

    def notify(self) -> builtins.list[NotifyChannel]:
        return decode_list(NotifyChannel, self._json("GET", "/notify"))

    def notify_test(self, channel: str | None = None) -> builtins.list[NotifyTestResult]:
        params = {"channel": channel} if channel is not None else {}
        return decode_list(NotifyTestResult, self._json("POST", "/notify/test", params=params))

    def logs(self, name: str, lines: int = 200, since: str | None = None) -> str:
        response = self._send("GET", f"/logs/{_segment(name)}", params=_log_params(lines, since))
        return response.text

    def follow_logs(self, name: str, lines: int = 200, since: str | None = None) -> Iterator[bytes]:
        """The log's last lines, then every chunk appended, until the daemon ends the stream."""
        params = {**_log_params(lines, since), "follow": "true"}
        response = self._send(
            "GET", f"/logs/{_segment(name)}", params=params, stream=True, timeout=None
        )
        with response:
            yield from response.iter_content(chunk_size=None)

    def stop(
        self, name: str, *, flatten: bool = False, timeout_ms: int | None = None
    ) -> StopResult:
        params: dict[str, Any] = {"flatten": "true" if flatten else "false"}
        if timeout_ms is not None:
            params["timeout"] = timeout_ms
        wait = _TIMEOUT_S + (timeout_ms or 5000) / 1000
        answer = self._json("POST", f"/stop/{_segment(name)}", params=params, timeout=wait)
        return decode(StopResult, answer)

    def shutdown(self) -> None:
        """`POST /shutdown`: accepted (202); the daemon stops its workers, then exits."""
        self._send("POST", "/shutdown")

    def metrics(self) -> str:
        return self._send("GET", "/metrics").text

    # -- plumbing ----------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", _TIMEOUT_S)
        try:
            response = self._session.request(method, self._base + path, **kwargs)
        except requests.ConnectionError:
            raise NoDaemonError(
                f"no daemon running (the daemon on port {self.port} went away)"
            ) from None
        except requests.Timeout:
            raise QktError(f"the daemon did not answer {method} {path} in time") from None
        if response.status_code >= 400:
            raise _error_of(response)
        return response


def _error_of(response: requests.Response) -> ControlError:
    try:
        error = response.json()["error"]
        code, message = str(error.pop("code")), str(error.pop("message"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ControlError(
            response.status_code,
            "http_error",
            f"the daemon answered {response.status_code}: {response.text[:200]}",
        )
    return ControlError(response.status_code, code, message, **error)


def _log_params(lines: int, since: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"lines": lines}
    if since is not None:
        params["since"] = since
    return params


def _segment(name: str) -> str:
    """`name` as one path segment (a name with `/` must reach the daemon to be refused)."""
    return quote(name, safe="")
