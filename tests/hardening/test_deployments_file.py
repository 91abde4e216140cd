"""Defect 5: a damaged deployments.json is kept aside, and what can be read of it is used.

Before: a truncated file was logged once, treated as empty and overwritten at once with
`{"deployments":[],"stopped":[]}`; the stopped list went too, so the next `--load-dir` brought
back strategies the user had stopped.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from qkt.supervisor import deployments
from qkt.supervisor.deployments import Deployment
from tests.supervisor.daemons import running_daemon, strategy


def saved_file(path: Path, folder: Path, names: list[str], stopped: list[str]) -> bytes:
    planned = [Deployment.create(str(strategy(folder, name))) for name in names]
    deployments.save(path, planned, stopped)
    return path.read_bytes()


def test_a_truncated_file_is_kept_aside_and_what_is_whole_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    whole = saved_file(path, tmp_path / "f", ["alpha", "beta", "gamma"], ["delta"])
    cut = whole[: whole.index(b'"gamma"')]  # alpha and beta whole, gamma torn
    path.write_bytes(cut)

    saved = deployments.load(path)

    assert [d.name for d in saved.deployments] == ["alpha", "beta"]
    assert saved.stopped == {"delta"} and not saved.stopped_lost
    assert saved.problem is not None and "deployments.json.corrupt-" in saved.problem
    [aside] = tmp_path.glob("deployments.json.corrupt-*")
    assert aside.read_bytes() == cut  # never overwritten
    # What was recovered is on disk again, so that a crash now loses nothing more.
    assert [d.name for d in deployments.load(path).deployments] == ["alpha", "beta"]


def test_garbage_loses_the_stopped_list_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_bytes(b'{"version": 1, "deployments": [{"name": "x"')
    saved = deployments.load(path)
    assert saved.deployments == [] and saved.stopped_lost
    assert saved.problem is not None and "stopped with `qkt stop` is lost" in saved.problem
    assert len(list(tmp_path.glob("deployments.json.corrupt-*"))) == 1


def test_a_whole_file_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    whole = saved_file(path, tmp_path / "f", ["alpha"], [])
    saved = deployments.load(path)
    assert saved.problem is None and [d.name for d in saved.deployments] == ["alpha"]
    assert path.read_bytes() == whole and not list(tmp_path.glob("*.corrupt-*"))


def test_a_daemon_starts_on_a_truncated_file_with_what_it_could_read(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir(mode=0o700)
    folder = tmp_path / "strategies"
    path = root / "deployments.json"
    whole = saved_file(path, folder, ["alpha", "beta"], ["gamma"])
    strategy(folder, "gamma")  # in --load-dir, but stopped by the user
    cut = whole[: whole.index(b'"beta"')]
    path.write_bytes(cut)

    with running_daemon(root, "--load-dir", str(folder)) as daemon:
        daemon.wait_state("alpha", "running")
        daemon.wait_state("beta", "running")  # lost from the file, back from --load-dir
        assert "gamma" not in daemon.entries()  # the user's stop survived the damage
        [aside] = root.glob("deployments.json.corrupt-*")
        assert aside.read_bytes() == cut
        assert "deployments.json was damaged" in daemon.state.daemon_log.read_text()
    names = [d["name"] for d in orjson.loads(path.read_bytes())["deployments"]]
    assert names == ["alpha", "beta"]
