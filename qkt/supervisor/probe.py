"""WorkerProbe: the daemon's HTTP client for its workers' status ports (httpx, async)."""

from __future__ import annotations

from typing import Any, Final

import httpx

# Where to reach a worker that binds a wildcard address.
_WILDCARDS: Final = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


class WorkerProbe:
    """Asks workers `/health`, `/status` and `POST /stop`; one connection pool for all of them."""

    def __init__(self, bind: str, token: str, *, timeout_s: float = 2.0) -> None:
        host = _WILDCARDS.get(bind, bind)
        self._host = f"[{host}]" if ":" in host else host
        self._timeout = timeout_s
        self._auth = {"Authorization": f"Bearer {token}"}
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            trust_env=False,  # never send loopback traffic through a proxy from the environment
        )

    def _url(self, port: int, path: str) -> str:
        return f"http://{self._host}:{port}{path}"

    async def healthy(self, port: int, timeout_s: float | None = None) -> bool:
        """True if the worker answers `/health` with `{"status": "ok"}` in time."""
        try:
            response = await self._client.get(
                self._url(port, "/health"), timeout=timeout_s or self._timeout
            )
            return response.status_code == 200 and response.json().get("status") == "ok"
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    async def status(self, port: int) -> dict[str, Any]:
        """The worker's `/status` object; raises httpx.HTTPError or ValueError if it can't."""
        response = await self._client.get(self._url(port, "/status"), headers=self._auth)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError(f"/status answered {type(body).__name__}, not an object")
        return body

    async def request_stop(self, port: int, *, flatten: bool) -> bool:
        """`POST /stop?flatten=...` with the daemon's token; True if the worker accepted it."""
        try:
            response = await self._client.post(
                self._url(port, "/stop"),
                params={"flatten": "true" if flatten else "false"},
                headers=self._auth,
            )
        except httpx.HTTPError:
            return False
        return response.status_code in (200, 202)

    async def command(self, port: int, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """`POST path?params` with the daemon's token (halt, resume, kill): the status code and
        the JSON answer; raises httpx.HTTPError or ValueError if there is none."""
        response = await self._client.post(self._url(port, path), params=params, headers=self._auth)
        return response.status_code, response.json()

    async def aclose(self) -> None:
        await self._client.aclose()
