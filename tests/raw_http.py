"""A loopback HTTP server that answers with whatever bytes a test scripts.

Unlike ``http.server`` it can misbehave on purpose: an endless body, an answer trickled a
byte at a time, an interim 1xx, a body that ends only when the connection does. Each
connection reads a request (head and Content-Length body), then hands the socket to the
test's ``answer``, which writes and says whether to keep the connection for another one.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

Answer = Callable[["RawServer", socket.socket], bool]
"""Writes one answer; True keeps the connection open for the next request."""

ENDLESS_CAP = 256 * 1024 * 1024
"""An "endless" body stops here, so that a client that never stops reading fails a test
by its assertions instead of hanging it."""


class RawServer:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.stopped = threading.Event()
        self.requests = 0
        self.heads: list[bytes] = []
        """Each request's head (request line and header lines), as received."""
        self.sent_bytes = 0
        self.lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            buffered = b""
            while not self.stopped.is_set():
                while b"\r\n\r\n" not in buffered:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffered) < length:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffered += data
                buffered = buffered[length:]
                with self.lock:
                    self.requests += 1
                    self.heads.append(head)
                if not self.answer(self, connection):
                    return

    def send(self, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        with self.lock:
            self.sent_bytes += len(data)

    def close(self) -> None:
        self.stopped.set()
        self._listener.close()


@contextlib.contextmanager
def raw_server(answer: Answer) -> Iterator[RawServer]:
    server = RawServer(answer)
    try:
        yield server
    finally:
        server.close()


def fixed(status: int, body: bytes) -> Answer:
    """An ordinary answer: ``status`` and ``body`` with its length, keeping the connection."""

    def answer(server: RawServer, connection: socket.socket) -> bool:
        head = f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\n\r\n"
        server.send(connection, head.encode() + body)
        return True

    return answer


def endless(status: int = 200, head: bytes = b"") -> Answer:
    """A body that never ends (until the client goes, or ``ENDLESS_CAP``), as fast as it can."""

    def answer(server: RawServer, connection: socket.socket) -> bool:
        server.send(connection, f"HTTP/1.1 {status} OK\r\n".encode() + head + b"\r\n")
        chunk = b"x" * 65536
        sent = 0
        while not server.stopped.is_set() and sent < ENDLESS_CAP:
            server.send(connection, chunk)
            sent += len(chunk)
        return False

    return answer


def trickle(interval: float = 0.2, limit: float = 20.0) -> Answer:
    """A 200 whose body comes one byte every ``interval`` seconds, for up to ``limit`` seconds."""

    def answer(server: RawServer, connection: socket.socket) -> bool:
        server.send(connection, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        ends = time.monotonic() + limit
        while not server.stopped.is_set() and time.monotonic() < ends:
            server.send(connection, b"x")
            # The server's own pace, not a test waiting for something.
            server.stopped.wait(interval)
        return False

    return answer
