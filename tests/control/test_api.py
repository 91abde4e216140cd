"""The control plane over real HTTP: status codes, the error envelope, auth, openapi, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.supervisor.daemons import RunningDaemon, running_daemon, strategy

BROKEN = """\
STRATEGY broken VERSION 1
SYMBOLS btc = SIM:BTCUSDT EVERY 1s
RULES
    WHEN btc.close > 100 THEN BUY btc SIZING 1 GARBAGE_HERE
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("api")
    with running_daemon(root / "s") as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("files")
    strategy(folder, "alpha")
    (folder / "broken.qkt").write_text(BROKEN)
    return folder


ERROR_ENVELOPE = "#/components/schemas/ErrorEnvelope"


def envelope(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error  # type: ignore[no-any-return]


def test_health_needs_no_token(daemon: RunningDaemon) -> None:
    health = requests.get(daemon.url("/health"), timeout=10).json()
    assert health["status"] == "ok" and health["pid"] == daemon.proc.pid
    assert health["control_port"] == int(daemon.state.control_port.read_text())
    assert set(health) >= {"version", "uptime_ms", "strategies"}
    for secret in (daemon.state.control_port, daemon.state.control_token):
        assert secret.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/list"),
        ("GET", "/status"),
        ("GET", "/hub"),
        ("POST", "/shutdown"),
        ("POST", "/stop/x"),
        ("GET", "/logs/x"),
        ("GET", "/openapi.json"),
        ("POST", "/deploy"),
        ("GET", "/list/all"),
        ("POST", "/restart/x"),
        ("POST", "/restart"),
        ("POST", "/stop"),
        ("POST", "/rm/x"),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_every_route_but_health_needs_the_token(
    daemon: RunningDaemon, method: str, path: str, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.request(method, daemon.url(path), headers=headers, timeout=10)
    error = envelope(response, 401, "unauthorized")
    assert "control.token" in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert daemon.get("/health").json()["status"] == "ok"  # still up, nothing shut down


def test_deploy_answers_201_with_the_list_entry(daemon: RunningDaemon, files: Path) -> None:
    response = daemon.post(
        "/deploy",
        json={"file": str(files / "alpha.qkt"), "name": "a1", "balance": "2500.50", "fee_bps": 7},
    )
    assert response.status_code == 201, response.text
    entry = response.json()
    assert entry["name"] == "a1" and entry["state"] == "running"
    assert entry["args"] == {
        "balance": "2500.50",
        "fee_bps": "7",
        "slippage_bps": "0",
        "sim": False,
    }
    assert entry["keys"] == ["SIM:BTCUSDT:1s"]
    assert [e["name"] for e in daemon.get("/list").json()] == ["a1"]
    daemon.post("/stop/a1")


def test_deploy_defaults_the_name_to_the_file_stem(daemon: RunningDaemon, files: Path) -> None:
    entry = daemon.post("/deploy", json={"file": str(files / "alpha.qkt")}).json()
    assert entry["name"] == "alpha"
    daemon.post("/stop/alpha")


def test_deploy_of_a_missing_file_is_404(daemon: RunningDaemon, files: Path) -> None:
    missing = files / "nope.qkt"
    error = envelope(daemon.post("/deploy", json={"file": str(missing)}), 404, "not_found")
    assert error["message"] == f"no such file: {missing}"


def test_a_dsl_error_comes_back_positioned(daemon: RunningDaemon, files: Path) -> None:
    response = daemon.post("/deploy", json={"file": str(files / "broken.qkt")})
    error = envelope(response, 422, "dsl_error")
    path = str(files / "broken.qkt")
    assert error["file"] == path and error["line"] == 4 and error["col"] == 48
    assert error["message"].startswith(f"{path}:4:48: ")
    assert error["errors"] == [error["message"]]
    caret = " " * 47 + "^"
    assert error["rendered"] == f"{error['message']}\n{BROKEN.splitlines()[3]}\n{caret}\n1 error"
    assert "broken" not in {e["name"] for e in daemon.get("/list").json()}


def test_a_broker_without_a_feed_is_refused_and_leaves_nothing(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "alpaca.qkt"
    path.write_text(
        "STRATEGY alpaca VERSION 1\nSYMBOLS a = SIM:BTCUSDT EVERY 1s, b = ALPACA:AAPL EVERY 1m\n"
    )
    error = envelope(daemon.post("/deploy", json={"file": str(path)}), 400, "bad_request")
    assert "no market data feed for broker 'ALPACA'" in error["message"]
    assert daemon.get("/hub").json() == [] and daemon.get("/list").json() == []
    sim = daemon.post("/deploy", json={"file": str(path), "sim": True})
    assert sim.status_code == 201 and sim.json()["keys"] == ["SIM:BTCUSDT:1s", "SIM:AAPL:1m"]
    daemon.post("/stop/alpaca")


def test_a_duplicate_name_is_409_and_says_to_stop_it(daemon: RunningDaemon, files: Path) -> None:
    daemon.post("/deploy", json={"file": str(files / "alpha.qkt"), "name": "dup"})
    before = daemon.get("/list").json()
    error = envelope(
        daemon.post("/deploy", json={"file": str(files / "alpha.qkt"), "name": "dup"}),
        409,
        "conflict",
    )
    assert "stop it first" in error["message"]
    after = daemon.get("/list").json()
    assert [(e["name"], e["pid"]) for e in after] == [(e["name"], e["pid"]) for e in before]
    daemon.post("/stop/dup")


@pytest.mark.parametrize("name", ["has space", "a/b", "..", "", "x" * 65, "daemon", "é"])
def test_bad_names_are_400(daemon: RunningDaemon, files: Path, name: str) -> None:
    response = daemon.post("/deploy", json={"file": str(files / "alpha.qkt"), "name": name})
    envelope(response, 400, "invalid_name")
    assert daemon.get("/list").json() == []


@pytest.mark.parametrize(
    ("body", "status", "code", "needle"),
    [
        ({"file": "x", "balance": "-5"}, 422, "invalid_request", "balance"),
        ({"file": "x", "balance": "0"}, 422, "invalid_request", "balance"),
        ({"file": "x", "balance": "1e3"}, 422, "invalid_request", "balance"),
        ({"file": "x", "fee_bps": "abc"}, 422, "invalid_request", "fee_bps"),
        ({"file": "x", "slippage_bps": 10001}, 422, "invalid_request", "slippage_bps"),
        ({"file": "x", "balance": True}, 422, "invalid_request", "balance"),
        # The market is the daemon's: asking for another one conflicts with its state.
        ({"file": "x", "speed": 99}, 409, "conflict", "--speed"),
        ({"file": "x", "seed": 5}, 409, "conflict", "--seed"),
    ],
)
def test_bad_deploy_options_are_refused(
    daemon: RunningDaemon, body: dict[str, Any], status: int, code: str, needle: str
) -> None:
    error = envelope(daemon.post("/deploy", json=body), status, code)
    assert needle in error["message"]
    assert daemon.get("/list").json() == []


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("2500.50", "2500.50"), (7, "7"), ("+.5", "0.5"), (0.25, "0.25"), ("10000", "10000")],
)
def test_money_is_kept_as_sent_in_plain_decimal(
    daemon: RunningDaemon, files: Path, sent: Any, kept: str
) -> None:
    body = {"file": str(files / "alpha.qkt"), "name": "money", "fee_bps": sent}
    entry = daemon.post("/deploy", json=body).json()
    try:
        assert entry["args"]["fee_bps"] == kept
    finally:
        daemon.post("/stop/money")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/status/ghost"), ("GET", "/logs/ghost"), ("POST", "/stop/ghost")],
)
def test_unknown_names_are_404(daemon: RunningDaemon, method: str, path: str) -> None:
    response = requests.request(
        method, daemon.url(path), timeout=10, headers={"Authorization": f"Bearer {daemon.token()}"}
    )
    error = envelope(response, 404, "not_found")
    assert "ghost" in error["message"]


@pytest.mark.parametrize("path", ["/status/a%20b", "/logs/a%20b", "/stop/a%20b", "/logs/..%2F"])
def test_bad_names_in_paths_are_400(daemon: RunningDaemon, path: str) -> None:
    method = "POST" if path.startswith("/stop") else "GET"
    response = requests.request(
        method, daemon.url(path), timeout=10, headers={"Authorization": f"Bearer {daemon.token()}"}
    )
    envelope(response, 400, "invalid_name")


def test_validation_errors_and_unknown_routes_use_the_envelope(daemon: RunningDaemon) -> None:
    error = envelope(daemon.post("/deploy", data=b"{not json"), 422, "invalid_request")
    assert error["errors"]
    envelope(daemon.post("/deploy", json={"name": "x"}), 422, "invalid_request")
    envelope(daemon.get("/logs/x", params={"lines": -1}), 422, "invalid_request")
    envelope(daemon.get("/no/such/route"), 404, "not_found")
    envelope(daemon.post("/list"), 405, "method_not_allowed")
    envelope(daemon.get("/logs/x", params={"since": "yesterday-ish"}), 404, "not_found")


def test_openapi_declares_every_route_with_its_errors(daemon: RunningDaemon) -> None:
    schema = daemon.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {
        "/health",
        "/deploy",
        "/list",
        "/status",
        "/status/{name}",
        "/logs/{name}",
        "/stop/{name}",
        "/shutdown",
        "/hub",
        "/notify",
        "/notify/test",
        "/metrics",
        "/list/all",
        "/restart",
        "/restart/{name}",
        "/stop",
        "/rm/{name}",
        *(f"/{verb}{one}" for verb in ("halt", "resume", "kill") for one in ("", "/{name}")),
    }
    deploy = paths["/deploy"]["post"]["responses"]
    assert set(deploy) == {"201", "400", "401", "404", "409", "411", "413", "422", "502", "503"}
    assert paths["/stop/{name}"]["post"]["responses"]["200"]["content"]["application/json"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:  # every error is the envelope, in JSON, text routes too
                    assert answer["content"] == {
                        "application/json": {"schema": {"$ref": ERROR_ENVELOPE}}
                    }, (method, path, status)
                else:
                    assert answer["content"], (method, path, status)
            for parameter in operation.get("parameters", []):
                # A query string cannot carry null: optional means left out.
                assert "null" not in json.dumps(parameter["schema"]), (method, path, parameter)
    for text in ("/logs/{name}", "/metrics"):
        assert set(paths[text]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    name = paths["/status/{name}"]["get"]["parameters"][0]["schema"]
    assert name["pattern"] == "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$"


def test_metrics_is_prometheus_text(daemon: RunningDaemon, files: Path) -> None:
    daemon.post("/deploy", json={"file": str(files / "alpha.qkt"), "name": "m1"})
    try:
        text = requests.get(daemon.url("/metrics"), timeout=10).text  # no token: loopback only
        assert 'qkt_strategies{state="running"} 1.0' in text
        assert 'qkt_strategy_restarts_total{name="m1"} 0.0' in text
        assert 'qkt_hub_subscribers{key="SIM:BTCUSDT:1s"} 1.0' in text
        assert "qkt_hub_candles_published_total" in text
    finally:
        daemon.post("/stop/m1")


def test_logs_tail_and_since(daemon: RunningDaemon, files: Path) -> None:
    daemon.post("/deploy", json={"file": str(files / "alpha.qkt"), "name": "talk"})
    try:
        text = daemon.get("/logs/talk", params={"lines": 1}).text
        assert text.count("\n") == 1 and "fake worker talk started" in text
        assert daemon.get("/logs/talk", params={"since": "2000-01-01T00:00:00Z"}).text
        assert daemon.get("/logs/talk", params={"since": "2999-01-01T00:00:00Z"}).text == ""
        envelope(daemon.get("/logs/talk", params={"since": "soon"}), 400, "bad_request")
    finally:
        daemon.post("/stop/talk")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        # No strategy file there (not a regular file, or a path that cannot name one): 404.
        ({"file": "/dev/null"}, 404),
        ({"file": "/tmp"}, 404),
        ({"file": "."}, 404),
        ({"file": "a\u0000b"}, 404),
        ({"file": "x" * 300}, 404),
        ({"file": "~nobody-by-this-name/a.qkt"}, 404),
        ({"file": "é é"}, 404),  # missing: said before its stem is judged as a name
        # Outside the schema: 422.
        ({"file": "x" * 5000}, 422),
        ({"file": ""}, 422),
        ({"file": "\ud800.qkt"}, 422),  # a lone surrogate is no string
        ({"file": "/x.qkt", "balance": "1e999999"}, 422),
        ({"file": "/x.qkt", "fee_bps": "20000"}, 422),
        ({"file": "/x.qkt", "speed": 0}, 422),
        ({"file": "/x.qkt", "extra": 1}, 422),
    ],
)
def test_odd_deploy_input_is_a_4xx_never_a_crash(
    daemon: RunningDaemon, body: dict[str, Any], status: int
) -> None:
    response = daemon.post("/deploy", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    assert daemon.get("/list").json() == []


@pytest.mark.parametrize("since", ["9" * 40, "9" * 40 + "d", "2026-13-45", "\u0000"])
def test_odd_since_is_a_400(daemon: RunningDaemon, files: Path, since: str) -> None:
    daemon.post("/deploy", json={"file": str(files / "alpha.qkt"), "name": "odd"})
    try:
        envelope(daemon.get("/logs/odd", params={"since": since}), 400, "bad_request")
    finally:
        daemon.post("/stop/odd")


def test_docs_is_one_offline_page_of_every_route(daemon: RunningDaemon) -> None:
    response = requests.get(daemon.url("/docs"), timeout=10)  # no token: schema only
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for path in daemon.get("/openapi.json").json()["paths"]:
        assert f"<code>{path}</code>" in page, path
    # Nothing to fetch: no script, no stylesheet or image from elsewhere.
    assert "<script" not in page and "src=" not in page and "href=" not in page


def test_the_list_body_is_what_its_response_model_makes_of_it(
    daemon: RunningDaemon, files: Path
) -> None:
    """`GET /list`, which carries a record per strategy (a thousand, say), answers with the
    records' JSON without FastAPI's check against the response model: it must be exactly what
    that check would give, a halt left out while None included (as null)."""
    from pydantic import TypeAdapter

    from qkt.control.schemas import ListEntry

    daemon.post("/deploy", json={"file": str(files / "alpha.qkt"), "name": "shape"})
    daemon.wait_state("shape", "running", timeout=60)
    try:
        response = daemon.get("/list")
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert {item["name"]: item["halt"] for item in body}["shape"] is None
        adapter = TypeAdapter(list[ListEntry])
        assert adapter.dump_python(adapter.validate_python(body), mode="json") == body
    finally:
        daemon.post("/stop/shape")
