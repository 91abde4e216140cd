"""Issue 11, defect 9: a worker under a daemon answers nothing but `/health` without the daemon's
token. Its status, trades, logs, events, metrics and schema hold balances, positions and paths,
and `--bind-workers 0.0.0.0` puts the port on the network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, running_daemon, strategy

pytestmark = pytest.mark.slow

GUARDED = ("/status", "/trades", "/logs", "/metrics", "/openapi.json", "/events")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("token")
    with running_daemon(root / "s", worker=REAL_WORKER) as running:
        assert running.cli("deploy", str(strategy(root / "files", "alpha"))).returncode == 0
        yield running


def port_of(daemon: RunningDaemon) -> int:
    return int(daemon.entries()["alpha"]["port"])


@pytest.mark.parametrize("path", GUARDED)
def test_without_the_token_a_worker_says_401(daemon: RunningDaemon, path: str) -> None:
    url = f"http://127.0.0.1:{port_of(daemon)}{path}"
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        response = requests.get(url, headers=headers, timeout=10, stream=True)
        assert response.status_code == 401, (path, response.status_code)
        assert response.json()["error"]["code"] == "unauthorized"


def test_health_is_open_and_the_token_opens_the_rest(daemon: RunningDaemon) -> None:
    port = port_of(daemon)
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).json() == {"status": "ok"}
    assert daemon.worker_get(port, "/status").json()["name"] == "alpha"
    assert daemon.worker_get(port, "/openapi.json").json()["info"]["title"] == "qkt worker"
    # The daemon itself still reads its workers (it sends the token): `qkt status` has figures.
    status = daemon.get("/status/alpha").json()
    assert status["name"] == "alpha" and "equity" in status
