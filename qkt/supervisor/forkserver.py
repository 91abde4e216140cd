"""The fork server's own process: `python -m qkt.supervisor.forkserver MODULE FD`.

It imports the worker code (MODULE, e.g. `qkt.worker`: fastapi, uvicorn, pyzmq, the engine), runs
the module's `prepare_fork()` if it has one (the worker's: build its status app, rehearse a
worker's life, docs/performance.md), plugs the free holes of its heaps (`heapholes`), and then
nothing else runs in it: no sockets but its command socket, no event loop, no threads. For each
request (one JSON line: a WorkerSpec) it forks twice: the middle process exits at once, so the
worker is re-parented to the daemon (a subreaper), which watches and reaps it. The imported code
stays shared copy-on-write between the server and every worker (`gc.freeze()` keeps the garbage
collector from touching, and so copying, those pages).

Requests, one JSON line each: `{"id": N, "spec": {...WorkerSpec...}}`. Replies, one JSON line
each: `{"ready": pid}` once after the imports, then per request `{"id": N, "pid": P}` or
`{"id": N, "error": "..."}`. The id is what keeps the two sides in step: a request the daemon gave
up on (a stopped or very slow server) is still answered later, and only the id tells that late
answer from the next request's.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, Final

import orjson

from qkt import osproc, proctitle
from qkt.heapholes import plug_heap_holes
from qkt.paths import make_private_dir
from qkt.supervisor.process import set_parent_death_signal
from qkt.worker.spec import WorkerSpec

RunWorker = Callable[[WorkerSpec], int]
_REPARENT_TIMEOUT_S: Final = 10.0


def load_target(module: str) -> RunWorker:
    """`MODULE.run_worker`, imported now (this is the preload), and the C library that every
    worker's parent-death signal goes through, loaded once for all of them."""
    osproc.libc()
    imported = importlib.import_module(module)
    target: Any = getattr(imported, "run_worker", None)
    if not callable(target):
        raise ImportError(f"{module} has no run_worker(spec) function")
    prepare: Any = getattr(imported, "prepare_fork", None)
    if callable(prepare):
        try:
            prepare()  # what every worker would build after the fork, built once and shared
        except Exception:
            # Only memory is at stake: the workers still run, each building its own.
            print(f"qkt fork server: {module}.prepare_fork failed:", file=sys.stderr)
            traceback.print_exc()
    return target  # type: ignore[no-any-return]


def serve(sock: socket.socket, run_worker: RunWorker) -> None:
    """Answer spawn requests until the daemon closes its end of the socket."""
    reader = sock.makefile("rb")
    _reply(sock, {"ready": os.getpid()})
    for line in reader:
        request_id: object = None
        try:
            request_id, spec = parse_request(line)
            pid = _double_fork(sock, spec, run_worker)
        except Exception as error:
            _reply(sock, {"id": request_id, "error": f"{type(error).__name__}: {error}"})
            continue
        _reply(sock, {"id": request_id, "pid": pid})


def parse_request(line: bytes) -> tuple[int, WorkerSpec]:
    """`{"id": N, "spec": {...}}` as (N, the spec); ValueError for anything else."""
    raw: Any = orjson.loads(line)
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        raise ValueError('a request is {"id": N, "spec": {...}}')
    return raw["id"], WorkerSpec.from_json(orjson.dumps(raw.get("spec")))


def _reply(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(orjson.dumps(message) + b"\n")


def _double_fork(sock: socket.socket, spec: WorkerSpec, run_worker: RunWorker) -> int:
    """Fork a middle process that forks the worker and exits; return the worker's pid."""
    read_fd, write_fd = os.pipe()
    gc.freeze()  # objects made so far stay out of the collector's reach: shared pages stay shared
    middle = os.fork()
    if middle == 0:  # the middle process
        try:
            os.close(read_fd)
            me = os.getpid()  # not getppid() in the worker: the middle may be gone by then
            worker = os.fork()
            if worker == 0:
                os.close(write_fd)
                _become_worker(sock, spec, run_worker, middle_pid=me)
            os.write(write_fd, str(worker).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(middle, 0)
    if not data:
        raise RuntimeError("the middle process died before reporting the worker's pid")
    return int(data)


def _become_worker(
    sock: socket.socket, spec: WorkerSpec, run_worker: RunWorker, *, middle_pid: int
) -> None:
    """In the worker: own session, own log file, parent-death signal, then run; never returns."""
    code = 1
    try:
        # detach() first: the file object from makefile() would otherwise keep the fd open.
        os.close(sock.detach())
        os.setsid()
        proctitle.set_title(proctitle.worker(spec.name))
        _redirect_stdio(spec)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        _wait_for_adoption(spec, middle_pid)
        code = run_worker(spec)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        with contextlib.suppress(OSError):
            _redirect_stdio(spec)  # the log may have been rotated since: the crash goes to its path
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


def _redirect_stdio(spec: WorkerSpec) -> None:
    """stdin from /dev/null; stdout and stderr append to the worker's own log file."""
    make_private_dir(spec.log_file.parent)
    append = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW  # never through a symlink
    log_fd = os.open(spec.log_file, append, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)


def _wait_for_adoption(spec: WorkerSpec, middle_pid: int) -> None:
    """Wait until the daemon has adopted us, then ask to die with it.

    PR_SET_PDEATHSIG fires when the *current* parent dies, so it is set only after the middle
    process has exited and the daemon (the subreaper) has become our parent.
    """
    deadline = time.monotonic() + _REPARENT_TIMEOUT_S
    while os.getppid() == middle_pid:
        if time.monotonic() > deadline:
            raise RuntimeError("the fork server's middle process did not exit")
        time.sleep(0.001)
    set_parent_death_signal(signal.SIGTERM)
    if spec.parent_pid is not None and os.getppid() != spec.parent_pid:
        # The daemon died before adopting us (or is not a subreaper): nobody would watch us.
        raise RuntimeError(f"parent is pid {os.getppid()}, not the daemon (pid {spec.parent_pid})")


def main(argv: list[str]) -> int:
    """Entry point: `MODULE FD`."""
    module, fd = argv[0], int(argv[1])
    proctitle.set_title(proctitle.FORK_SERVER)
    sock = socket.socket(fileno=fd)
    sock.set_inheritable(False)
    set_parent_death_signal(signal.SIGKILL)  # nothing to clean up here: the daemon is gone
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the daemon's to handle
    try:
        run_worker = load_target(module)
    except Exception as error:
        _reply(sock, {"error": f"cannot import {module}: {type(error).__name__}: {error}"})
        return 1
    gc.collect()
    plug_heap_holes()  # after the collection, which freed what it could
    serve(sock, run_worker)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
