"""One check per input: for the same mistake the CLI and the API answer with the same code and
the same message (`qkt.inputs`, `qkt.paths.check_name`), whoever checks first."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from qkt.errors import QktError
from qkt.inputs import parse_balance, parse_timeout_ms, read_strategy_file
from qkt.paths import check_name
from tests.supervisor.daemons import RunningDaemon, qkt, running_daemon, strategy


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    with running_daemon(tmp_path_factory.mktemp("inputs") / "s") as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("files")
    strategy(folder, "fine")
    (folder / "folder.qkt").mkdir()
    return folder


def api_error(response: requests.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def cli_message(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1 and result.stdout == "", result
    assert result.stderr.startswith("qkt: error: ") and result.stderr.count("\n") == 1
    return result.stderr.removeprefix("qkt: error: ").rstrip("\n")


def parser_error(parse: Callable[[], Any]) -> tuple[str, str]:
    """The code and message of the shared parser the CLI calls itself."""
    with pytest.raises(QktError) as caught:
        parse()
    return caught.value.code, caught.value.message


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_file_that_is_not_a_strategy_file(daemon: RunningDaemon, files: Path, kind: str) -> None:
    path = str(files / ("missing.qkt" if kind == "missing" else "folder.qkt"))
    status, code, message = api_error(daemon.post("/deploy", json={"file": path}))
    assert (status, code) == (404, "not_found")
    assert cli_message(daemon.cli("deploy", path)) == message
    # Without a daemon, `qkt run` checks the file with the same parser: same code, same words.
    assert parser_error(lambda: read_strategy_file(path)) == (code, message)
    assert cli_message(qkt("run", path, "--state-dir", str(files / "s"))) == message


@pytest.mark.parametrize("name", ["-dash", "has space", "x" * 65])
def test_a_bad_name(daemon: RunningDaemon, files: Path, name: str) -> None:
    body = {"file": str(files / "fine.qkt"), "name": name}
    status, code, message = api_error(daemon.post("/deploy", json=body))
    assert (status, code) == (400, "invalid_name")
    assert cli_message(daemon.cli("deploy", str(files / "fine.qkt"), f"--as={name}")) == message
    assert cli_message(qkt("--state-dir", daemon.root, "stop", "--", name)) == message
    assert parser_error(lambda: check_name(name)) == (code, message)
    assert daemon.get("/list").json() == []


@pytest.mark.parametrize("balance", ["0", "-5", "lots", "1e3", "1000000000000001"])
def test_a_bad_balance(daemon: RunningDaemon, files: Path, balance: str) -> None:
    body = {"file": str(files / "fine.qkt"), "balance": balance}
    status, code, message = api_error(daemon.post("/deploy", json=body))
    assert (status, code) == (422, "invalid_request")
    assert message.startswith("balance must ")
    assert cli_message(daemon.cli("deploy", str(files / "fine.qkt"), f"--balance={balance}")) == (
        message
    )
    assert parser_error(lambda: parse_balance(balance)) == (code, message)
    # `qkt run` (no daemon) refuses the same balance, naming its flag.
    run = cli_message(qkt("run", str(files / "fine.qkt"), f"--balance={balance}"))
    assert run == "--" + message


@pytest.mark.parametrize("timeout", ["-1", "3600001"])
def test_a_bad_timeout(daemon: RunningDaemon, files: Path, timeout: str) -> None:
    status, code, message = api_error(daemon.post("/stop/fine", params={"timeout": timeout}))
    assert (status, code) == (422, "invalid_request")
    assert message.startswith("timeout must ")
    assert cli_message(daemon.cli("stop", "fine", f"--timeout={timeout}")) == message
    assert parser_error(lambda: parse_timeout_ms(int(timeout))) == (code, message)
