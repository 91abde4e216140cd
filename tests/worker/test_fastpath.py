"""`GET /health` and an authorized `GET /status`, answered in front of the status app, answer what
the app's own routes answer; every other request (an unauthorized `/status` included) still
gets the app's answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qkt.hub import HubEndpoints
from qkt.worker.schemas import StatusOut
from qkt.worker.spec import WorkerSpec
from tests.helpers import wait_until
from tests.worker.harness import FLIP, FLIP_KEY, get, hub_process, running, worker_args

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubEndpoints]:
    with hub_process(tmp_path_factory.mktemp("hub"), [FLIP_KEY]) as endpoints:
        yield endpoints


def test_the_fast_answers_are_the_apps_and_the_token_still_guards_status(
    tmp_path: Path, hub: HubEndpoints
) -> None:
    token = tmp_path / "control.token"
    token.write_text(TOKEN + "\n")
    spec = WorkerSpec(
        name="flip",
        file=str(tmp_path / "flip.qkt"),
        source=FLIP,
        state_dir=str(tmp_path / "state"),
        hub_pub=hub.pub,
        hub_snapshot=hub.snapshot,
        token_file=str(token),
    )
    with running(worker_args(spec.to_json())):
        port = int(wait_until(lambda: spec.port_file.exists() and spec.port_file.read_text(), 20))

        health = get(port, "/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert health.headers["content-type"] == "application/json"

        answer = get(port, "/status", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body["name"] == "flip" and body["state"] == "running"
        # What the app's route would send: its response model, validated and dumped.
        assert StatusOut.model_validate(body).model_dump(mode="json") == body

        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            refused = get(port, "/status", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "unauthorized"
