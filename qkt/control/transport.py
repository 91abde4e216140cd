"""The CLI's HTTP transport to the daemon: a few dozen lines over a plain socket.

A CLI command must answer in a few tens of milliseconds (docker's `ps` does), so the way to the
daemon imports no HTTP library at all (`http.client` alone pulls in `email` and `ssl`): one
HTTP/1.1 request per connection (`Connection: close`) over the daemon's Unix socket
`<state>/control.sock` when it is there, else over TCP to 127.0.0.1 and the port in
`control.port`. Both carry the same API and bearer token. The daemon (uvicorn) answers with a
`Content-Length` body, or a chunked one when it streams (`logs -f`); both are read here.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

LOOPBACK: Final = "127.0.0.1"
_CHUNK: Final = 65536
_MAX_HEAD: Final = 64 * 1024


class TransportError(Exception):
    """Nothing answers where the daemon should be (refused, reset, no socket file, not HTTP)."""


class TransportTimeout(Exception):
    """The daemon took longer than the request's timeout."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the daemon listens: a Unix socket path, or a TCP port on 127.0.0.1."""

    unix_path: str | None = None
    port: int | None = None

    def describe(self) -> str:
        return f"socket {self.unix_path}" if self.unix_path else f"port {self.port}"

    def open(self, timeout: float | None) -> socket.socket:
        """A connected socket; OSError if nothing listens there."""
        if self.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = self.unix_path
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (LOOPBACK, self.port)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole response: status, content type and body."""

    status: int
    content_type: str
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _Reader:
    """Buffered reads from one socket: lines for the head, exact counts for the body."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def _fill(self) -> bool:
        data = self._sock.recv(_CHUNK)
        self._buffer += data
        return bool(data)

    def line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > _MAX_HEAD or not self._fill():
                raise TransportError("the daemon's answer is not HTTP")
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise TransportError("the daemon closed the connection mid-answer")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def some(self) -> bytes:
        """What is buffered, else the next read ("" at the end)."""
        if not self._buffer:
            self._fill()
        data, self._buffer = self._buffer, b""
        return data


class Transport:
    """Sends requests to one endpoint with one bearer token; a fresh connection each time."""

    def __init__(self, endpoint: Endpoint, token: str) -> None:
        self.endpoint = endpoint
        self._token = token

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        timeout: float | None = 30.0,
    ) -> Answer:
        """Send one request and read the whole answer."""
        status, content_type, chunks = self._exchange(method, path, params, body, timeout)
        try:
            return Answer(status, content_type, b"".join(chunks))
        except TimeoutError:
            raise TransportTimeout(f"{method} {path}") from None
        except OSError as error:
            raise TransportError(str(error)) from None

    def stream(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None
    ) -> tuple[int, Iterator[bytes]]:
        """Send one request; its status, and its body piece by piece as it arrives (a daemon
        that goes away ends the stream)."""
        status, _, chunks = self._exchange(method, path, params, None, None)

        def pieces() -> Iterator[bytes]:
            try:
                yield from chunks
            except (OSError, TransportError):
                return

        return status, pieces()

    def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout: float | None,
    ) -> tuple[int, str, Iterator[bytes]]:
        if params:
            path = f"{path}?{urlencode(params)}"
        head = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
        if self._token:
            head.append(f"Authorization: Bearer {self._token}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif method != "GET":
            head.append("Content-Length: 0")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")
        try:
            sock = self.endpoint.open(timeout)
        except TimeoutError:
            raise TransportTimeout(f"{method} {path}") from None
        except OSError as error:
            raise TransportError(str(error)) from None
        try:
            sock.sendall(request)
            reader = _Reader(sock)
            status, headers = _read_head(reader)
        except TimeoutError:
            sock.close()
            raise TransportTimeout(f"{method} {path}") from None
        except (OSError, TransportError) as error:
            sock.close()
            raise TransportError(str(error)) from None
        return status, headers.get("content-type", ""), _body(sock, reader, headers)


def _read_head(reader: _Reader) -> tuple[int, dict[str, str]]:
    parts = reader.line().split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise TransportError("the daemon's answer is not HTTP")
    headers: dict[str, str] = {}
    while line := reader.line():
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def _body(sock: socket.socket, reader: _Reader, headers: dict[str, str]) -> Iterator[bytes]:
    """The body as it arrives: by chunks, by Content-Length, or up to the end of the stream."""
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while size := int(reader.line().split(b";")[0].strip() or b"0", 16):
                yield reader.exactly(size)
                reader.exactly(2)  # the CRLF after each chunk
            return
        length = headers.get("content-length")
        if length is not None:
            yield reader.exactly(int(length))
            return
        while data := reader.some():
            yield data
    finally:
        sock.close()
