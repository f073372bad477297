"""A scripted stand-in for the Magic Hour API, on a real loopback port.

Each test says what every ``(method, path)`` answers, in order (the last
answer repeats), and reads back what arrived: method, path, headers, body and
when. Unlike the emulator it can answer anything at all: a 429 with any
``Retry-After``, a 500 twice, an HTML page, a silence longer than the client's
timeout.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = b""
    """Bytes as they are, a str as UTF-8 text, anything else as JSON."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering."""


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Names lowercased."""
    body: bytes
    at: float
    """time.monotonic() when it arrived."""

    def json(self) -> Any:
        return json.loads(self.body)


class FakeApi:
    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[Received] = []
        self._replies: dict[tuple[str, str], list[Reply]] = {}
        self._lock = threading.Lock()

    def script(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self._replies[(method, path)] = list(replies)

    def to(self, method: str, path: str) -> list[Received]:
        """The requests that arrived for ``method path``."""
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def _next(self, method: str, path: str) -> Reply:
        with self._lock:
            replies = self._replies.get((method, path))
            if not replies:
                return Reply(404, {"message": f"no route {method} {path}"})
            return replies.pop(0) if len(replies) > 1 else replies[0]


ACCOUNT = {
    "id": "cm0account0000000000000001",
    "email": "dev@example.com",
    "credits": 1234,
    "tier": "free",
    "subscription": None,
}


@contextmanager
def fake_api() -> Iterator[FakeApi]:
    """A FakeApi listening on 127.0.0.1 for the duration of the ``with``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a test's output is its assertions."""

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            api.requests.append(Received(self.command, self.path, headers, body, time.monotonic()))
            reply = api._next(self.command, self.path)
            if reply.delay:
                time.sleep(reply.delay)
            if isinstance(reply.body, bytes):
                data, kind = reply.body, "application/octet-stream"
            elif isinstance(reply.body, str):
                data, kind = reply.body.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(reply.body).encode(), "application/json"
            try:
                self.send_response(reply.status)
                self.send_header("content-type", reply.headers.get("content-type", kind))
                self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    if name != "content-type":
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up first (a timeout test)

        do_GET = _answer
        do_POST = _answer

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            """Quiet too: clients that time out on purpose leave broken connections."""

    server = Server(("127.0.0.1", 0), Handler)
    api = FakeApi(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
