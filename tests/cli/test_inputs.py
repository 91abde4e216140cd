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
from qkt.paths import StateDir, check_name
from qkt.supervisor.config import load_config
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


@pytest.mark.parametrize(
    "text",
    ["[workers]\nstop_timeout_s = 5\n", "[sim]\nspeed = 0\n", "[restart]\nattempts = 'x'\n"],
    ids=["misspelt-key", "bad-value", "bad-type"],
)
def test_a_bad_config_key(tmp_path: Path, text: str) -> None:
    """There is no API for the daemon's settings: the CLI gives the config builder's own
    message, naming the key, and starts nothing."""
    path = tmp_path / "qkt.toml"
    path.write_text(text)
    code, message = parser_error(lambda: load_config(StateDir(tmp_path / "s"), path, {}))
    assert code == "bad_config" and str(path) in message
    result = qkt("daemon", "--state-dir", str(tmp_path / "s"), "--config", str(path))
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr == f"qkt: error: {message}\n"
    assert not (tmp_path / "s" / "control.port").exists()


def test_a_misspelt_key_from_code_is_refused_too(tmp_path: Path) -> None:
    """Flags reach the builder as keys too: one that is not a setting is an error naming it,
    never silently ignored."""
    code, message = parser_error(
        lambda: load_config(StateDir(tmp_path), None, {"workers.stop_timeout_s": 5})
    )
    assert code == "bad_config"
    assert message.startswith("unknown setting workers.stop_timeout_s (known: daemon.load_dir")
