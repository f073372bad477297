"""The HTTP server under ``mhw listen`` and ``mhw emulate``: framing, limits, persistence.

Three layers: a differential test of every request in tests/http_corpus.py against
llhttp (through httptools) and h11, over a real loopback socket; unit tests of the
protocol class with a stand-in transport; and one named test per attack measured
against the hand-written parser this server replaced, driving ``mhw listen``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import h11
import httptools
import pytest

from http_corpus import CASES, H11_DISAGREES
from mh_webhook_cli.http_server import Limits, Request, Response, serve

Message = tuple[bytes, bytes, bytes]
"""(method, target, body) of a request accepted."""


@dataclass(frozen=True)
class Verdict:
    accepted: tuple[Message, ...]
    """The requests handed to the handler, in order."""
    refusal: int | None
    """The status that refused what followed them, if anything was refused."""


# The oracles, written against the parsers' own APIs, not mhw's code.


@dataclass
class _Parsed:
    method: bytes
    target: bytes
    version: str
    keep_alive: bool
    upgrade: bool
    codings: list[str]
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False


class _LlhttpRecorder:
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.messages: list[_Parsed] = []
        self.begun = 0
        self.url = b""
        self.codings: list[str] = []
        self.in_body = False

    def on_message_begin(self) -> None:
        self.begun += 1
        self.url, self.codings, self.in_body = b"", [], False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_body and name.lower() == b"transfer-encoding":
            self.codings += [c.strip().lower() for c in value.decode("latin-1").split(",")]

    def on_headers_complete(self) -> None:
        self.in_body = True
        parser = self.parser
        self.messages.append(
            _Parsed(
                parser.get_method(),
                self.url,
                parser.get_http_version(),
                parser.should_keep_alive(),
                parser.should_upgrade(),
                self.codings,
            )
        )

    def on_body(self, body: bytes) -> None:
        self.messages[-1].body += body

    def on_message_complete(self) -> None:
        self.messages[-1].complete = True


def llhttp_verdict(data: bytes) -> Verdict:
    """What llhttp accepts, and the three refusals mhw adds to it (see http_server's
    docstring): 505 for versions but 1.0 and 1.1, 400 for upgrades, 501 for a transfer
    coding other than chunked. A request cut short by the client's EOF gets 400."""
    recorder = _LlhttpRecorder()
    try:
        recorder.parser.feed_data(data)
        failed = False
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        failed = True
    accepted: list[Message] = []
    for message in recorder.messages:
        if message.version not in ("1.0", "1.1"):
            return Verdict(tuple(accepted), 505)
        if message.upgrade:
            return Verdict(tuple(accepted), 400)
        if message.codings and message.codings != ["chunked"]:
            return Verdict(tuple(accepted), 501)
        if not message.complete:
            return Verdict(tuple(accepted), 400)
        accepted.append((message.method, message.target, bytes(message.body)))
        if not message.keep_alive:
            return Verdict(tuple(accepted), None)  # what follows is not read at all
    cut_short = recorder.begun > len(recorder.messages)
    return Verdict(tuple(accepted), 400 if failed or cut_short else None)


def h11_verdict(data: bytes) -> tuple[tuple[Message, ...], bool]:
    """What h11 accepts, and whether it refuses what follows (or a request cut short)."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    connection.receive_data(b"")
    accepted: list[Message] = []
    method = target = b""
    body = bytearray()
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Request):
                method, target, body = event.method, event.target, bytearray()
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                accepted.append((method, target, bytes(body)))
                # Not 2xx: a CONNECT or Upgrade proposal is declined, and parsing goes on.
                connection.send(h11.Response(status_code=404, headers=[("content-length", "0")]))
                connection.send(h11.EndOfMessage())
                if connection.our_state is h11.MUST_CLOSE:
                    return tuple(accepted), False
                connection.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return tuple(accepted), False
            else:  # PAUSED: a protocol switch proposed, which mhw's server would refuse
                return tuple(accepted), True
    except h11.RemoteProtocolError:
        return tuple(accepted), True


# mhw's server over a real loopback socket.


@dataclass
class Served:
    port: int
    received: list[Request]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """``http_server.serve`` on a loop of its own (uvloop, as mhw runs it), answering 200."""
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is not on Windows
        loop = asyncio.new_event_loop()
    received: list[Request] = []

    def handler(request: Request) -> Response:
        received.append(request)
        return Response(200, b"ok\n")

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(serve(handler, "127.0.0.1", 0), loop).result(10)
    yield Served(server.sockets[0].getsockname()[1], received)
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data``, half-close, and return all the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def statuses(answers: bytes) -> list[int]:
    """The final statuses in a stream of responses (each framed by Content-Length)."""
    found = []
    while answers:
        head, _, rest = answers.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = next(
            (
                int(line.split(b":")[1])
                for line in lines
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        answers = rest[length:]
        if status != 100:
            found.append(status)
    return found


@pytest.mark.parametrize("name", CASES)
def test_mhw_accepts_and_refuses_as_llhttp_does(served: Served, name: str) -> None:
    expected = llhttp_verdict(CASES[name])
    served.received.clear()
    answered = statuses(exchange(served.port, CASES[name]))
    accepted = tuple(
        (r.method.encode(), r.target.encode("latin-1"), r.body) for r in served.received
    )
    assert Verdict(accepted, None) == Verdict(expected.accepted, None)
    refusal = [expected.refusal] if expected.refusal is not None else []
    assert answered == [200] * len(accepted) + refusal


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 200


def test_h11_agrees_except_where_documented() -> None:
    disagreements = set()
    for name, data in CASES.items():
        ours = llhttp_verdict(data)
        if h11_verdict(data) != (ours.accepted, ours.refusal is not None):
            disagreements.add(name)
    assert sorted(disagreements) == sorted(H11_DISAGREES)
