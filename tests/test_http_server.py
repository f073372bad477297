"""The HTTP server under ``mhw listen`` and ``mhw emulate``: framing, limits, persistence.

Three layers: a differential test of every request in tests/http_corpus.py against
llhttp (through httptools) and h11, over a real loopback socket; unit tests of the
protocol class with a stand-in transport; and one named test per attack measured
against the hand-written parser this server replaced, driving ``mhw listen``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import h11
import httptools
import pytest
from http_corpus import CASES, H11_DISAGREES
from test_listen import Listening, Start, start_listener

from conftest import wait_for
from mh_webhook_cli.core.request import Request
from mh_webhook_cli.receive.http import (
    LINGER_SECONDS,
    Handler,
    HttpProtocol,
    Later,
    Limits,
    RejectHook,
    Response,
    _Connections,
    serve,
)

__all__ = ["start_listener"]  # a fixture, used by name

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
    """What llhttp accepts, and the refusals mhw adds to it (see receive/http.py's docstring):
    505 for versions but 1.0 and 1.1, 400 for upgrades and for a transfer coding in an
    HTTP/1.0 request, 501 for a transfer coding other than chunked. A request cut short by
    the client's EOF gets 400."""
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
        if message.version == "1.0" and message.codings:
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
    """``receive.http.serve`` on a loop of its own (uvloop, as mhw runs it), answering 200."""
    loop: asyncio.AbstractEventLoop
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


@contextlib.contextmanager
def serving(handler: Handler, on_reject: RejectHook | None = None) -> Iterator[int]:
    """``receive.http.serve`` with ``handler`` on a uvloop loop of its own: its port."""
    import uvloop

    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started = serve(handler, "127.0.0.1", 0, on_reject=on_reject)
    server = asyncio.run_coroutine_threadsafe(started, loop).result(10)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def bodies(answers: bytes) -> list[bytes]:
    """The bodies in a stream of responses (each framed by Content-Length)."""
    found = []
    while answers:
        head, _, rest = answers.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        found.append(rest[:length])
        answers = rest[length:]
    return found


def echoes_in_order(handler: Handler, count: int) -> bool:
    """Whether ``count`` pipelined GETs of /0, /1, ... sent in one write get answers whose
    bodies are their targets, in order (the handler answers each with its target)."""
    targets = [b"/%d" % number for number in range(count)]
    with serving(handler) as port:
        pipeline = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % t for t in targets)
        answers = exchange(port, pipeline)
    return bodies(answers) == targets


def test_answers_given_through_later_before_the_handler_returns_keep_up_with_a_pipeline() -> None:
    """3,000 pipelined requests in one read, each answered before its handler returns: every
    answer, in order (answered from a callback, each nested a call, and ~330 overflowed)."""

    def handler(request: Request) -> Later:
        later = Later()
        later.answer(Response(200, request.target.encode()))
        return later

    assert echoes_in_order(handler, 3000)


def test_answers_given_through_later_go_out_in_request_order() -> None:
    """Answered from the loop later, sooner for each later request: still in order."""
    handed: list[Later] = []

    def handler(request: Request) -> Later:
        later = Later()
        delay = 0.05 - 0.01 * int(request.target.strip("/"))
        asyncio.get_running_loop().call_later(
            delay, later.answer, Response(200, request.target.encode())
        )
        handed.append(later)
        return later

    assert echoes_in_order(handler, 5)
    assert all(later.response is not None for later in handed)


def test_a_handler_that_fails_answers_500_and_says_why() -> None:
    """A bug of ours is answered 500 (the sender retries) and reported, never silent."""
    rejected: list[tuple[int, str]] = []

    def handler(request: Request) -> Response:
        raise ValueError("judging broke")

    with serving(handler, lambda client, status, reason: rejected.append((status, reason))) as port:
        answers = exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert statuses(answers) == [500]
    assert rejected == [(500, "internal error in mhw: ValueError('judging broke')")]


@pytest.mark.parametrize("name", CASES)
def test_mhw_accepts_and_refuses_as_llhttp_does_and_as_h11_where_documented(
    served: Served, name: str
) -> None:
    """The same requests, bodies and targets as llhttp, the same refusal; h11 agrees
    with what mhw did, except in the cases http_corpus.H11_DISAGREES explains."""
    expected = llhttp_verdict(CASES[name])
    served.received.clear()
    answered = statuses(exchange(served.port, CASES[name]))
    accepted = tuple(
        (r.method.encode(), r.target.encode("latin-1"), r.body) for r in served.received
    )
    assert accepted == expected.accepted
    refusal = [expected.refusal] if expected.refusal is not None else []
    assert answered == [200] * len(accepted) + refusal
    h11_agrees = h11_verdict(CASES[name]) == (accepted, len(answered) > len(accepted))
    assert h11_agrees == (name not in H11_DISAGREES), H11_DISAGREES.get(name, "h11 disagrees")


# The attacks measured against the hand-written parser this server replaced, each
# against a real ``mhw listen``.


def read_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def first_status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def post(body: bytes = b"{}", *, version: bytes = b"1.1", headers: bytes = b"") -> bytes:
    return b"POST / HTTP/%s\r\nHost: a\r\n%sContent-Length: %d\r\n\r\n%s" % (
        version,
        headers,
        len(body),
        body,
    )


def assert_refused_and_still_serving(listening: Listening, data: bytes, status: int) -> None:
    assert first_status(exchange(listening.port, data)) == status
    assert first_status(exchange(listening.port, post(b'{"valid":1}'))) == 200
    listening.stop()
    assert [row[5] for row in listening.stored()] == [b'{"valid":1}']


def test_smuggling_with_chunked_content_length_and_empty_te_is_refused(
    start_listener: Start,
) -> None:
    """Read by length, the chunk data was stored as a second, smuggled POST."""
    smuggled = b"POST /smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"
    attack = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding:\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    )
    assert_refused_and_still_serving(start_listener(), attack, 400)


def test_transfer_encoding_gzip_then_chunked_is_not_implemented(start_listener: Start) -> None:
    attack = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    assert_refused_and_still_serving(start_listener(), attack, 501)


@pytest.mark.parametrize(
    "trailer", [b"\x00garbage\r\n", b"X-Trailer: 1\n", b"garbage without colon\r\n"]
)
def test_malformed_trailers_are_refused(start_listener: Start, trailer: bytes) -> None:
    attack = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
        + trailer
        + b"\r\n"
    )
    assert_refused_and_still_serving(start_listener(), attack, 400)


@pytest.mark.parametrize("byte", [b"\x00", b"\x1b", b"\x7f"])
def test_control_characters_in_the_target_are_refused(start_listener: Start, byte: bytes) -> None:
    attack = post().replace(b"POST / ", b"POST /a" + byte + b"b ")
    assert_refused_and_still_serving(start_listener(), attack, 400)


def test_a_flood_of_one_byte_chunks_gets_413_by_its_raw_bytes_and_others_are_served(
    start_listener: Start,
) -> None:
    """Chunk framing counts toward --max-body, decoding is linear, and the loop stays free.

    2 MB of 1-byte chunks decode to 333 KB, under the limit: counted decoded, the flood
    would never be refused, and the old decoder re-read the body on every read.
    """
    max_body = 2_000_000
    listening = start_listener("--max-body", str(max_body))
    piece = b"1\r\nA\r\n" * 10_000
    sent = 0
    answer = b""

    def flood() -> None:
        nonlocal sent, answer
        with socket.create_connection(("127.0.0.1", listening.port), timeout=20) as connection:
            connection.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                while sent < 2 * max_body and not select.select([connection], [], [], 0)[0]:
                    connection.sendall(piece)
                    sent += len(piece)
            except OSError:
                pass  # the server stopped reading after its answer
            answer = connection.recv(65536)

    flooding = threading.Thread(target=flood)
    flooding.start()
    wait_for(lambda: sent >= max_body // 4, what="the flood to be under way")
    started = time.monotonic()
    assert first_status(exchange(listening.port, post(b'{"valid":1}'))) == 200
    answered_in = time.monotonic() - started
    flooding.join(30)
    # Decoded, at most 2 * max_body / 6 bytes arrived: only the raw bytes pass the limit.
    assert first_status(answer) == 413
    assert answered_in < 3.0, f"a normal request waited {answered_in:.1f} s behind the flood"


@pytest.mark.parametrize(("headers", "kept"), [(b"Connection: keep-alive\r\n", True), (b"", False)])
def test_http_1_0_persistence_is_answered_as_asked(
    start_listener: Start, headers: bytes, kept: bool
) -> None:
    """``ab -k`` hung: a 1.0 client was told nothing and the socket stayed open."""
    listening = start_listener()
    with socket.create_connection(("127.0.0.1", listening.port), timeout=10) as connection:
        connection.sendall(post(version=b"1.0", headers=headers))
        answer = connection.recv(65536)
        head = answer.split(b"\r\n\r\n")[0].lower()
        assert first_status(answer) == 200
        if kept:
            assert b"\r\nconnection: keep-alive" in head
            connection.sendall(post(version=b"1.0", headers=headers))
            assert first_status(connection.recv(65536)) == 200
        else:
            assert b"\r\nconnection: close" in head
            assert read_until_closed(connection) == b""  # closed by the server


def test_three_pipelined_requests_then_a_half_close_get_three_answers(
    start_listener: Start,
) -> None:
    listening = start_listener()
    bodies = [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    answers = exchange(listening.port, b"".join(post(body) for body in bodies))
    assert statuses(answers) == [200, 200, 200]
    listening.stop()
    assert [row[5] for row in listening.stored()] == bodies


def test_connection_cap_closes_the_oldest_idle_connections_for_a_new_sender(
    start_listener: Start,
) -> None:
    """300 idle connections against a 256-file limit locked every sender out."""
    listening = start_listener("--max-connections", "4", "--idle-timeout", "60")
    address = ("127.0.0.1", listening.port)
    expecting = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    first = [socket.create_connection(address, timeout=10) for _ in range(4)]
    later: list[socket.socket] = []
    try:
        # Four connections in the middle of a request: none idle, so a fifth is turned away.
        for connection in first:
            connection.sendall(expecting)
            assert connection.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        with socket.create_connection(address, timeout=10) as newcomer:
            assert first_status(read_until_closed(newcomer)) == 503
        # Answered, they stay open, idle: each new connection closes the one idle the longest.
        for connection in first:
            connection.sendall(b"{}")
            assert first_status(connection.recv(4096)) == 200
        later = [socket.create_connection(address, timeout=10) for _ in range(4)]
        for connection in first:
            assert read_until_closed(connection) == b""
        assert first_status(exchange(listening.port, post(b'{"valid":1}'))) == 200
        assert read_until_closed(later[0]) == b""
    finally:
        for connection in first + later:
            connection.close()
    listening.stop()
    assert ": 503 4 connections already open" in listening.stderr()


def test_clients_that_read_no_answers_cannot_hold_the_connections(start_listener: Start) -> None:
    """Clients that pipeline requests and never read their answers are dropped, and a
    delivery gets through. (Before, a close waited for such a client to read what was
    buffered, and the slot stayed taken: the unit tests above pin that mechanism down.)"""
    listening = start_listener("--max-connections", "2", "--read-timeout", "1")
    pid = listening.process.pid

    def open_sockets() -> int:
        count = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        return count

    before = open_sockets()
    hogs = []
    try:
        for _ in range(2):
            hog = socket.socket()
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.connect(("127.0.0.1", listening.port))
            requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 100_000
            # Sent from a thread: once the server stops reading, sendall blocks until closed.
            threading.Thread(target=send_quietly, args=(hog, requests), daemon=True).start()
            hogs.append(hog)
        wait_for(lambda: open_sockets() == before + 2, what="the hogs to be accepted")
        wait_for(lambda: open_sockets() == before, timeout=30, what="the hogs to be dropped")
        assert first_status(exchange(listening.port, post())) == 200
    finally:
        for hog in hogs:
            hog.close()


def send_quietly(connection: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        connection.sendall(data)


def test_idle_timeout_closes_silent_connections(start_listener: Start) -> None:
    listening = start_listener("--idle-timeout", "0.3")
    address = ("127.0.0.1", listening.port)
    with socket.create_connection(address, timeout=10) as silent:
        started = time.monotonic()
        assert read_until_closed(silent) == b""
        assert time.monotonic() - started < 5
    with socket.create_connection(address, timeout=10) as kept_alive:
        kept_alive.sendall(post())
        assert first_status(kept_alive.recv(65536)) == 200
        assert read_until_closed(kept_alive) == b""


# The protocol class alone, with a stand-in for asyncio's transport.


class FakeTransport:
    """Records what the protocol does to its connection."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.unread = 0
        """Bytes written that the client has not read (asyncio's write buffer)."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def get_write_buffer_size(self) -> int:
        return self.unread

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


def connect(
    handler: Handler, limits: Limits | None = None, connections: _Connections | None = None
) -> tuple[HttpProtocol, FakeTransport]:
    protocol = HttpProtocol(handler, limits or Limits(), None, connections)
    transport = FakeTransport()
    protocol.connection_made(cast(asyncio.Transport, transport))
    return protocol, transport


def echo(request: Request) -> Response:
    return Response(200, request.body)


def test_pipelined_requests_wait_their_turn_and_reading_pauses_meanwhile() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pending: list[tuple[Request, asyncio.Future[Response]]] = []

        def later(request: Request) -> asyncio.Future[Response]:
            pending.append((request, loop.create_future()))
            return pending[-1][1]

        protocol, transport = connect(later)
        protocol.data_received(post(b"1") + post(b"2") + post(b"3"))
        assert [request.body for request, _ in pending] == [b"1"]
        assert not transport.reading  # two requests wait: read no more
        for index in range(3):
            request, answer = pending[index]
            answer.set_result(Response(200, request.body))
            await asyncio.sleep(0)  # the future's callbacks run
            assert statuses(bytes(transport.written)) == [200] * (index + 1)
        assert [request.body for request, _ in pending] == [b"1", b"2", b"3"]
        assert transport.written.endswith(b"\r\n\r\n3")
        assert transport.reading and not transport.closed

    asyncio.run(scenario())


def test_a_client_that_reads_no_answers_is_not_read_and_is_dropped() -> None:
    """A client pipelining requests and never reading made the server queue answers
    without end, and held its place under the cap for good."""

    async def scenario() -> None:
        connections = _Connections(1)
        protocol, transport = connect(echo, Limits(read_timeout=0.05), connections)
        protocol.data_received(post(b"1"))
        protocol.pause_writing()  # what asyncio calls once its write buffer is full
        assert not transport.reading
        protocol.data_received(post(b"2") + post(b"3"))  # already in flight
        assert statuses(bytes(transport.written)) == [200]  # no answer while it reads none
        protocol.resume_writing()
        assert statuses(bytes(transport.written)) == [200, 200, 200]
        assert transport.reading and not transport.closed

        protocol.pause_writing()
        transport.unread = 1 << 20
        await wait_until(lambda: transport.aborted)
        protocol.connection_lost(None)
        assert connections.open == 0

    asyncio.run(scenario())


def test_a_connection_closed_with_unread_answers_gives_its_place_back_at_once() -> None:
    async def scenario() -> None:
        connections = _Connections(1)
        _, transport = connect(echo, Limits(idle_timeout=0.01), connections)
        transport.unread = 4096
        await wait_until(lambda: transport.closed)  # the idle timeout
        assert connections.open == 0 and not transport.aborted
        await wait_until(lambda: transport.aborted, timeout=LINGER_SECONDS + 5)

    asyncio.run(scenario())


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """The async twin of conftest.wait_for, for a protocol's own timers."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_the_body_limit_counts_chunk_framing_read_by_read() -> None:
    async def scenario() -> None:
        protocol, transport = connect(echo, Limits(max_body=600))
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        fed = 0
        while not transport.written and fed < 6000:
            protocol.data_received(b"1\r\nA\r\n")
            fed += 6
        # 101 one-byte chunks, 606 bytes received for a body of 101.
        assert statuses(bytes(transport.written)) == [413]
        assert 600 < fed <= 606

    asyncio.run(scenario())


@pytest.mark.parametrize(("version", "continued"), [(b"1.1", True), (b"1.0", False)])
def test_100_continue_is_sent_once_and_only_to_http_1_1(version: bytes, continued: bool) -> None:
    async def scenario() -> None:
        protocol, transport = connect(echo)
        request = post(b"{}", version=version, headers=b"Expect: 100-continue\r\n")
        protocol.data_received(request[:-2])
        interim = b"HTTP/1.1 100 Continue\r\n\r\n"
        assert bytes(transport.written) == (interim if continued else b"")
        protocol.data_received(request[-2:])
        assert transport.written.count(b"100 Continue") == int(continued)
        assert statuses(bytes(transport.written)) == [200]

    asyncio.run(scenario())


def test_the_connection_cap_evicts_the_oldest_idle_connection_else_turns_away() -> None:
    async def scenario() -> None:
        connections = _Connections(limit=2)
        _, first_transport = connect(echo, connections=connections)
        second, second_transport = connect(echo, connections=connections)
        second.data_received(b"POST / HTTP/1.1\r\n")  # in the middle of a request: not idle
        _, third_transport = connect(echo, connections=connections)
        assert first_transport.closed and not second_transport.closed
        fourth, fourth_transport = connect(echo, connections=connections)
        assert third_transport.closed and not second_transport.closed
        fourth.data_received(b"POST / HTTP/1.1\r\n")
        _, turned_away = connect(echo, connections=connections)
        assert turned_away.closed and statuses(bytes(turned_away.written)) == [503]
        assert not second_transport.closed and not fourth_transport.closed
        assert connections.open == 2

    asyncio.run(scenario())


def test_a_head_request_is_answered_without_content() -> None:
    async def scenario() -> None:
        protocol, transport = connect(lambda request: Response(200, b"hello"))
        head = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
        protocol.data_received(head + head.replace(b"HEAD", b"GET"))
        heads = bytes(transport.written).split(b"\r\n\r\n")
        assert [b"content-length: 5" in part for part in heads[:2]] == [True, True]
        assert heads[1].startswith(b"HTTP/1.1 200 OK")  # nothing between the two answers
        assert heads[2] == b"hello"

    asyncio.run(scenario())


def test_a_refused_connection_still_draining_makes_room_for_a_new_one() -> None:
    async def scenario() -> None:
        connections = _Connections(limit=1)
        refused, refused_transport = connect(echo, connections=connections)
        refused.data_received(b"\x16\x03\x01 not http\r\n\r\n")
        assert statuses(bytes(refused_transport.written)) == [400]
        assert not refused_transport.closed  # draining the client's bytes (see _refuse)
        _, newcomer = connect(echo, connections=connections)
        assert refused_transport.closed and not newcomer.closed and not newcomer.written

    asyncio.run(scenario())
