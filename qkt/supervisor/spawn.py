"""Starting worker processes: through the fork server (default), or a plain interpreter each.

Either way the worker gets its own session, stdin from /dev/null and stdout/stderr appended to
its own log file; the daemon learns only its pid and watches it through the `Reaper`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
from dataclasses import asdict
from typing import Final, Protocol

import orjson

from qkt.atomic import write_atomic
from qkt.paths import make_private_dir
from qkt.supervisor.errors import WorkerStartError
from qkt.supervisor.process import Reaper, describe_exit, signal_process
from qkt.worker.spec import WorkerSpec

log = logging.getLogger(__name__)

# The kernel's limit on one argument is 128 KiB (MAX_ARG_STRLEN); a bigger spec (the source can
# be up to 1 MiB) goes through a private file named by `@PATH` instead.
MAX_ARG_BYTES: Final = 100_000

FORKSERVER_MODULE: Final = "qkt.supervisor.forkserver"
_READY_TIMEOUT_S: Final = 60.0  # importing fastapi, uvicorn and zmq on a loaded 2-core box
_REQUEST_TIMEOUT_S: Final = 15.0
# Signals a child should start with at their default action (Python ignores SIGPIPE itself).
_DEFAULT_SIGNALS: Final = (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Spawner(Protocol):
    """Starts one worker process per call and returns its pid."""

    @property
    def method(self) -> str:
        """`fork` or `exec`: shown in the daemon's status."""
        ...

    async def spawn(self, spec: WorkerSpec) -> int: ...

    async def aclose(self) -> None: ...


def _spawn_python(argv: list[str], stdout_path: str, *, keep_fds: tuple[int, ...] = ()) -> int:
    """posix_spawn `python ARGV...` in a new session, stdio to /dev/null and `stdout_path`.

    posix_spawn rather than subprocess.Popen: the Reaper owns every child's exit status, and a
    Popen object that is never waited for would warn and race with it.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (
            os.POSIX_SPAWN_OPEN,
            1,
            stdout_path,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
            0o600,
        ),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    for fd in keep_fds:
        os.set_inheritable(fd, True)
    try:
        return os.posix_spawn(
            sys.executable,
            [sys.executable, *argv],
            dict(os.environ),
            file_actions=actions,
            setsid=True,
            setsigdef=_DEFAULT_SIGNALS,
        )
    finally:
        for fd in keep_fds:
            os.set_inheritable(fd, False)


class ExecSpawner:
    """`python -m MODULE SPEC_JSON` per worker: the fallback (and what `qkt run` does)."""

    method = "exec"

    def __init__(self, module: str) -> None:
        self._module = module

    async def spawn(self, spec: WorkerSpec) -> int:
        make_private_dir(spec.log_file.parent)
        data = spec.to_json()
        if len(data) > MAX_ARG_BYTES:  # a large source: Linux refuses one argument over 128 KiB
            path = spec.state.strategy_dir(spec.name) / "spec.json"
            make_private_dir(path.parent)
            write_atomic(path, data)
            argv = ["-m", self._module, f"@{path}"]
        else:
            argv = ["-m", self._module, data.decode()]
        return _spawn_python(argv, str(spec.log_file))

    async def aclose(self) -> None:
        return None


class ForkServer:
    """The daemon's side of the fork server: start it, send it specs, read back pids.

    Every request carries an id and every reply names the request it answers, so a request that
    timed out (a stopped or slow server) cannot shift the replies of the ones after it: its late
    reply is recognised by its id, and the worker it started, which nobody tracks, is killed.
    """

    method = "fork"

    def __init__(self, module: str, reaper: Reaper, log_path: str) -> None:
        self._module = module
        self._reaper = reaper
        self._log_path = log_path
        self._pid: int | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._replies: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, object]]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()  # one writer (and one restart) at a time

    @property
    def pid(self) -> int | None:
        return self._pid

    async def start(self) -> None:
        """Start the server and wait until it has imported the worker code."""
        ours, theirs = socket.socketpair()
        try:
            argv = ["-m", FORKSERVER_MODULE, self._module, str(theirs.fileno())]
            self._pid = _spawn_python(argv, self._log_path, keep_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        reply = await _read_reply(reader, _READY_TIMEOUT_S)
        if "ready" not in reply:
            await self.aclose()
            raise WorkerStartError(f"the fork server did not start: {reply.get('error', reply)}")
        self._replies = asyncio.create_task(self._read_replies(reader), name="fork-server-replies")
        log.info("fork server ready (pid %d, preloaded %s)", self._pid, self._module)

    async def spawn(self, spec: WorkerSpec) -> int:
        request_id = next(self._ids)
        answer: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        try:
            async with self._lock:
                if not self.alive() or self._writer is None:
                    log.warning("restarting the fork server")
                    await self._restart()
                writer = self._writer
                assert writer is not None
                self._pending[request_id] = answer
                writer.write(orjson.dumps({"id": request_id, "spec": asdict(spec)}) + b"\n")
            async with asyncio.timeout(_REQUEST_TIMEOUT_S):
                await writer.drain()
                reply = await answer
        except TimeoutError:
            raise WorkerStartError(
                f"the fork server did not answer within {_REQUEST_TIMEOUT_S:g} s "
                f"(a worker it starts late for {spec.name} will be killed)"
            ) from None
        except OSError as error:  # its socket broke: it died (it is restarted at the next spawn)
            raise WorkerStartError(f"the fork server is gone: {error}") from None
        finally:
            # From here on a reply for this id is a late one: _read_replies kills its worker.
            self._pending.pop(request_id, None)
        pid = reply.get("pid")
        if not isinstance(pid, int):
            raise WorkerStartError(f"the fork server could not start {spec.name}: {reply}")
        return pid

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        """Hand each reply to the request with its id, until the server closes its end."""
        try:
            while line := await reader.readline():
                reply = _parse_reply(line)
                request_id = reply.get("id")
                answer = (
                    self._pending.pop(request_id, None) if isinstance(request_id, int) else None
                )
                if answer is not None and not answer.done():
                    answer.set_result(reply)
                else:
                    self._kill_late_worker(reply)
        finally:
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(
                        WorkerStartError("the fork server exited (see logs/daemon.log)")
                    )
            self._pending.clear()

    def _kill_late_worker(self, reply: dict[str, object]) -> None:
        """A reply nobody waits for any more: its worker runs unwatched, so it must go."""
        pid = reply.get("pid")
        if not isinstance(pid, int):
            log.warning("the fork server answered a request given up on: %s", reply)
            return
        log.warning(
            "the fork server started pid %d for a request that had timed out: killing it", pid
        )
        # Its own session by now (or about to be): the group first, the pid itself if not yet.
        if not signal_process(pid, signal.SIGKILL, group=True):
            signal_process(pid, signal.SIGKILL)

    async def _restart(self) -> None:
        await self._stop_reading()
        await self.start()

    async def _stop_reading(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._replies is not None:
            self._replies.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replies
            self._replies = None

    def alive(self) -> bool:
        """False once the server process has exited (its exit is logged once)."""
        if self._pid is None:
            return False
        code = self._reaper.claim(self._pid)
        if code is None:
            return True
        log.error("the fork server (pid %d) %s", self._pid, describe_exit(code))
        self._pid = None
        return False

    async def aclose(self) -> None:
        """Close the socket (the server exits on EOF); kill it if it lingers."""
        await self._stop_reading()
        if self._pid is None:
            return
        pid, self._pid = self._pid, None
        for _ in range(50):
            if self._reaper.claim(pid) is not None:
                return
            await asyncio.sleep(0.02)
        signal_process(pid, signal.SIGKILL)
        for _ in range(50):
            if self._reaper.claim(pid) is not None:
                return
            await asyncio.sleep(0.02)


async def _read_reply(reader: asyncio.StreamReader, timeout: float) -> dict[str, object]:
    """One reply line, within `timeout` seconds."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        raise WorkerStartError(f"the fork server did not answer within {timeout:g} s") from None
    if not line:
        raise WorkerStartError("the fork server exited (see logs/daemon.log)")
    return _parse_reply(line)


def _parse_reply(line: bytes) -> dict[str, object]:
    try:
        reply = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {"error": f"not JSON: {line[:200]!r}"}
    return reply if isinstance(reply, dict) else {"error": reply}
