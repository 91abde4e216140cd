"""What already held in the hardening pass, pinned: many deploys and stops at once leave the list,
the processes and the hub's reference counts agreeing."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from tests.helpers import pid_alive, wait_until
from tests.supervisor.daemons import running_daemon, strategy

SYMBOLS = ("AAAUSDT", "BBBUSDT", "CCCUSDT")
COUNT = 24


def test_concurrent_deploys_and_stops_leave_list_processes_and_hub_agreeing(
    tmp_path: Path,
) -> None:
    names = [f"c{i:02d}" for i in range(COUNT)]
    symbol_of = {name: SYMBOLS[i % len(SYMBOLS)] for i, name in enumerate(names)}
    files = {name: strategy(tmp_path / "f", name, symbol=symbol_of[name]) for name in names}
    with running_daemon(tmp_path / "s") as daemon, ThreadPoolExecutor(COUNT) as pool:
        deployed = list(
            pool.map(lambda n: daemon.post("/deploy", json={"file": str(files[n])}), names)
        )
        assert [r.status_code for r in deployed] == [201] * COUNT, [r.text for r in deployed]
        for name in names:
            daemon.wait_state(name, "running", timeout=120)
        gone, kept = names[::2], names[1::2]
        stopped = list(pool.map(lambda n: daemon.post(f"/stop/{n}"), gone))
        assert [r.status_code for r in stopped] == [200] * len(gone), [r.text for r in stopped]

        entries = daemon.entries()
        assert sorted(entries) == kept
        assert {e["state"] for e in entries.values()} == {"running"}
        children = {c.pid for c in psutil.Process(daemon.proc.pid).children()}
        assert {e["pid"] for e in entries.values()} <= children
        first_pids = {r.json()["pid"] for r in deployed if r.json().get("pid")}
        assert first_pids, "deploy answers carry the worker's pid"
        assert not [pid for pid in first_pids - children if pid_alive(pid)]  # none left behind
        wanted = Counter(f"SIM:{symbol_of[n]}:1s" for n in kept)

        def hub_agrees() -> bool:
            keys = {k["key"]: k["subscribers"] for k in daemon.get("/hub").json()}
            return {k: v for k, v in keys.items() if v} == dict(wanted)

        wait_until(hub_agrees, timeout=30, what="hub reference counts matching the list")
