"""The OpenAPI schemas say what the servers do: schemathesis fuzzes them, live.

One real daemon runs the example strategies on the simulated market (real workers). Schemathesis'
CLI then runs against its control plane and against one worker's status port, with the checks
that matter: no server error, only documented status codes and content types, answers that match
their schema, no schema-valid request refused (ST202) and no schema-invalid one accepted.
`POST /shutdown`, `POST /stop[/{name}]` and `POST /restart` (all) are left out: they would end
the run or restart every strategy at each example. (A worker's
`POST /stop` stays in: without the daemon's token it can only be refused.)

The seed is fixed so that a failure reproduces; `QKT_FUZZ_SEED=<n>` tries another one and
`QKT_FUZZ_EXAMPLES=<n>` more examples per operation.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from tests.helpers import PYTHON, REPO_ROOT
from tests.supervisor.daemons import REAL_WORKER, RunningDaemon, child_env, running_daemon

pytestmark = pytest.mark.slow

EXAMPLES: Final = REPO_ROOT / "examples" / "strategies"
NAMES: Final = sorted(path.stem for path in EXAMPLES.glob("*.qkt"))
SEED: Final = os.environ.get("QKT_FUZZ_SEED", "20261124")
MAX_EXAMPLES: Final = os.environ.get("QKT_FUZZ_EXAMPLES", "25")
CHECKS: Final = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",  # ST202: a request the schema allows is not refused
    "negative_data_rejection",
    "ignored_auth",
    "unsupported_method",
)
RUN_TIMEOUT_S: Final = 240


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("fuzz")
    # The daemon works in the repo root (running_daemon's cwd), so the schema's example files
    # (`examples/strategies/...`) are real and the fuzzer's deploys can succeed.
    args = ("--load-dir", str(EXAMPLES), "--speed", "120")
    with running_daemon(root / "s", *args, worker=REAL_WORKER) as running:
        for name in NAMES:
            running.wait_state(name, "running", timeout=60)
        yield running


def schemathesis(target: str, report: Path, *args: str) -> dict[str, Any]:
    """`schemathesis run TARGET ARGS...`; its JSON report, after failing on any finding."""
    command = [
        PYTHON,
        "-m",
        "schemathesis.cli",
        "run",
        target,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *args,
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=report.parent,
        env=child_env(SCHEMATHESIS_HOOKS="tests.control.fuzz_hooks"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    found: dict[str, Any] = json.loads(report.read_text())
    assert found["complete"] and not found["failures"] and not found["errors"], output
    return found


def test_the_control_plane_does_what_its_schema_says(daemon: RunningDaemon, tmp_path: Path) -> None:
    report = schemathesis(
        daemon.url("/openapi.json"),
        tmp_path / "control.json",
        "--header",
        f"Authorization: Bearer {daemon.token()}",
        "--exclude-path",
        "/shutdown",
        "--exclude-path",
        "/stop/{name}",
        "--exclude-path",
        "/stop",
        "--exclude-path",
        "/restart",
    )
    # Every route but those that end things (shutdown, stop one or all) or restart them all.
    assert report["operations"]["tested"] == 19
    assert report["test_cases"]["generated"] > 100
    # The schema's examples made it deploy for real: the 201 answer was checked too.
    assert len(daemon.entries()) > len(NAMES)


def test_a_worker_does_what_its_schema_says(daemon: RunningDaemon, tmp_path: Path) -> None:
    port = daemon.entries()[NAMES[0]]["port"]
    report = schemathesis(
        f"http://127.0.0.1:{port}/openapi.json",
        tmp_path / "worker.json",
        "--header",
        f"Authorization: Bearer {daemon.token()}",  # every route but /health needs it
        "--exclude-path",
        "/events",  # a live stream that never ends; tests/worker/test_events.py reads it
        "--exclude-path",
        "/stop",  # with the token these would end the worker under test
        "--exclude-path",
        "/kill",
    )
    assert report["operations"]["tested"] == 7
    assert daemon.entries()[NAMES[0]]["port"] == port  # still the same worker: nothing stopped


def test_a_drifted_schema_is_caught(daemon: RunningDaemon, tmp_path: Path) -> None:
    """The fuzz test can fail: a schema that lets any name through (as before) is refuted."""
    schema = daemon.get("/openapi.json").json()
    (name,) = schema["paths"]["/status/{name}"]["get"]["parameters"]
    del name["schema"]["pattern"]
    drifted = tmp_path / "drifted.json"
    drifted.write_text(json.dumps(schema))
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "schemathesis.cli",
            "run",
            str(drifted),
            "--url",
            daemon.url(""),
            "--header",
            f"Authorization: Bearer {daemon.token()}",
            "--include-path",
            "/status/{name}",
            "--checks",
            "positive_data_acceptance",
            "--mode",
            "positive",
            "--max-examples",
            "50",
            "--seed",
            SEED,
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=tmp_path,
        env=child_env(),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Schema-valid request rejected" in result.stdout
    assert "invalid_name" in result.stdout


def test_a_worker_refuses_ids_beyond_its_journal_with_a_422(daemon: RunningDaemon) -> None:
    """Found by the fuzzer: `after` past SQLite's integers was a 500 (OverflowError)."""
    port = daemon.entries()[NAMES[0]]["port"]
    for path in (f"/trades?after={2**63}", f"/logs?since={2**70}"):
        response = daemon.worker_get(port, path)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_request"
    assert daemon.worker_get(port, f"/trades?after={2**63 - 1}").ok
