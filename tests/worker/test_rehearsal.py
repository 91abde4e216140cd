"""The fork server's preparation: the prebuilt status app and the rehearsed worker life."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from qkt.worker import prebuilt
from qkt.worker.events import EventRing
from qkt.worker.prebuilt import prebuild_status_app, return_status_app, status_app_for
from tests.helpers import PYTHON

# Run in a process of its own, as the fork server does: the rehearsal configures logging and
# runs an event loop, which a test process must not have changed under it.
PREPARE = """
import json, os, threading
fds = sorted(os.listdir("/proc/self/fd"))
from qkt.worker import prepare_fork
from qkt.worker.rehearsal import rehearse
from qkt.worker import prebuilt
prepare_fork()
again = rehearse()
app = prebuilt._prebuilt[0]
print(json.dumps({
    "trades": again.trades,
    "answers": again.answers,
    "threads": [t.name for t in threading.enumerate()],
    "new_fds": sorted(set(os.listdir("/proc/self/fd")) - set(fds)),
    "prebuilt": len(prebuilt._prebuilt),
    "bound": sorted(vars(app.state)["_state"]),
}))
"""


def test_prepare_fork_rehearses_a_worker_and_leaves_nothing_running_or_open(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [PYTHON, "-c", PREPARE], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["trades"] > 0  # the rehearsal's worker traded and journaled
    assert found["answers"] == {"/health": 200, "/status": 200}
    assert found["threads"] == ["MainThread"]  # nothing a fork would lose or copy half-made
    assert found["new_fds"] == []  # no socket, journal or log file left open
    assert found["prebuilt"] == 1 and found["bound"] == []  # one app, bound to no worker
    assert list(tmp_path.iterdir()) == []  # the scratch folder is gone


class _View:
    def status(self) -> object:
        raise AssertionError("not asked")


def test_a_worker_binds_the_prebuilt_app_and_a_second_builds_its_own(tmp_path: Path) -> None:
    app = prebuild_status_app()
    try:
        ring = EventRing(10)
        first = status_app_for(_View(), ring, tmp_path / "token")  # type: ignore[arg-type]
        second = status_app_for(_View(), ring, None)  # type: ignore[arg-type]
        assert first is app and first.state.token_file == tmp_path / "token"
        assert second is not app and second.state.token_file is None
        return_status_app(app)
        assert not hasattr(app.state, "view")  # handed back unbound
        assert status_app_for(_View(), ring, None) is app  # type: ignore[arg-type]
    finally:
        prebuilt._prebuilt.clear()  # in-process runners of other tests build their own
