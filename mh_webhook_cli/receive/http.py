"""HTTP/1.1 for receiving webhooks: llhttp parses, mhw guards the connection.

A public URL hands this module bytes from anyone, so the framing is not ours:
llhttp (through httptools; the parser of Node.js and of uvicorn) decides where
each request starts and ends, in its strict mode (no leniency is enabled).
A hand-written parser stored a request smuggled by ``Transfer-Encoding: chunked``
plus ``Content-Length`` plus an empty ``Transfer-Encoding``, re-read the whole
chunked body on every read (1-byte chunks held the loop for seconds), and let
control characters through in the target and trailers; llhttp refuses all of
that and parses incrementally, in linear time. It also parses a webhook in
about half the time the hand-written parser took, where h11 takes an order of
magnitude longer (``python bench/parsers.py``).

Around the parser, mhw keeps the duties of a server facing strangers:

- one request answered at a time per connection, in order; pipelined requests
  wait their turn, and reading pauses while any wait;
- 400 for whatever llhttp refuses, for protocol upgrades (CONNECT,
  ``Connection: upgrade``) and for ``Transfer-Encoding`` in an HTTP/1.0
  request; 505 for HTTP versions other than 1.0 and 1.1; 501 for a transfer
  coding other than chunked (its bytes would not be the body);
- a client that does not read its answers is not read either (``pause_writing``),
  and is dropped when it has not read them within ``Limits.read_timeout``;
- 413 once the bytes received for a body pass ``Limits.max_body``, chunk
  framing included, and 431 once a request's head passes ``MAX_HEAD``;
- 408 when a request takes longer than ``Limits.read_timeout`` to arrive;
- persistence as the request's HTTP version says (a 1.0 client gets
  ``Connection: keep-alive`` only when it asked and the connection stays open);
- ``Limits.max_connections``: when full, the connection idle the longest is
  closed to make room, else the newcomer gets 503 and is closed;
- ``Limits.idle_timeout``: a connection silent between requests is closed.

Every refusal answers a status a sender understands, then closes (see ``_refuse``).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from http import HTTPStatus
from typing import Union, cast

import httptools

from mh_webhook_cli.core.limits import (
    IDLE_TIMEOUT_DEFAULT,
    MAX_BODY_DEFAULT,
    MAX_CONNECTIONS_DEFAULT,
    READ_TIMEOUT_DEFAULT,
)
from mh_webhook_cli.core.request import Request

MAX_HEAD = 32 * 1024
"""Request line and headers together; larger gets 431 (nginx's default is 8-32 KiB)."""
LINGER_SECONDS = 2.0
"""How long a refused request's connection keeps reading before it closes (see _refuse)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    stream: Callable[[asyncio.Transport], asyncio.BaseProtocol] | None = None
    """A body of no known length (server-sent events): the head goes out without one, and
    the connection is handed to the protocol this returns, which writes the body and closes
    it. The connection leaves the server's cap and timers; the stream's owner bounds both."""


class Later:
    """An answer the handler gives after it returns: it returns this at once, then calls
    :meth:`answer` on the loop, once, when it knows the response (a listener, once the
    request's row is committed).

    What a future does for its one callback, without the turn of the loop a future's
    callback waits for, nor the future's upkeep: about a microsecond a request, at
    thousands of requests a second.
    """

    __slots__ = ("_deliver", "response")

    def __init__(self) -> None:
        self.response: Response | None = None
        """What :meth:`answer` gave; the server sends one given before the handler returned
        as it sends a :class:`Response` returned."""
        self._deliver: Callable[[Response], None] | None = None

    def answer(self, response: Response) -> None:
        if self.response is not None:
            return  # once
        self.response = response
        if self._deliver is not None:
            self._deliver(response)

    def when_answered(self, deliver: Callable[[Response], None]) -> None:
        """Call ``deliver`` with the response: now if there is one, else when there is."""
        if self.response is None:
            self._deliver = deliver
        else:
            deliver(self.response)


Handler = Callable[[Request], Union[Response, Later, Awaitable[Response]]]  # noqa: UP007
"""Answers a request: at once, later through :class:`Later`, or through a future or coroutine.

A plain future (such as a database commit's) is awaited without a task per
request, which matters at thousands of requests a second; :class:`Later` costs less again.
"""
RejectHook = Callable[[str, int, str], None]
"""Called as (client, status, reason) when a request or connection is refused before
reaching the handler, or answered 500 because the handler failed."""


@dataclass(frozen=True)
class Limits:
    max_body: int = MAX_BODY_DEFAULT
    """Bytes received for one body, chunk framing included; then 413."""
    read_timeout: float = READ_TIMEOUT_DEFAULT
    """Seconds a client may take to send one whole request once it has started; then 408."""
    idle_timeout: float = IDLE_TIMEOUT_DEFAULT
    """Seconds a connection may stay silent before its first request or between two."""
    max_connections: int = MAX_CONNECTIONS_DEFAULT
    """Connections open at once; see ``_Connections``."""


class _Refused:
    """A refusal waiting its turn: it is answered after the requests received before it."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


class _StopParsing(Exception):
    """Raised from a parser callback to abandon the rest of the bytes fed."""


class _Connections:
    """A server's open connections, for the cap, the idle ones oldest first, and shutdown.

    A stranger opening connections and sending nothing would otherwise lock every
    sender out once the process runs out of file descriptors: when the cap is
    reached, the connection idle the longest is closed to make room (it holds no
    request, and a sender reopens a connection closed while idle; a refused one
    draining its client's bytes counts as idle too). When none is idle, every
    connection is in the middle of a request, and the newcomer is the one turned
    away: slow requests can fill the cap, each for at most ``Limits.read_timeout``
    (all clients of a tunnel share one address, so there is no per-client quota).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.admitted: set[HttpProtocol] = set()
        self.idle: dict[HttpProtocol, None] = {}
        """Insertion-ordered: the first is the one idle the longest."""
        self.stopping = False
        """:meth:`stop_reading` ran: a connection the server accepted just before is finished
        as soon as it is made."""
        self._all_closed: asyncio.Future[None] | None = None
        """Resolved when the last connection closes, once stopping."""

    @property
    def open(self) -> int:
        return len(self.admitted)

    def admit(self, connection: HttpProtocol) -> bool:
        if self.open >= self.limit:
            if not self.idle:
                return False
            oldest = next(iter(self.idle))
            oldest.evict()
        self.admitted.add(connection)
        return True

    def release(self, connection: HttpProtocol) -> None:
        self.admitted.discard(connection)
        self.idle.pop(connection, None)
        if not self.admitted and self._all_closed is not None and not self._all_closed.done():
            self._all_closed.set_result(None)

    def stop_reading(self) -> None:
        """Shutdown: every connection reads no more, answers what it received, then closes.

        Closing the listening socket is not enough: a keep-alive connection would go
        on delivering requests to a listener that is tearing down its store.
        """
        self.stopping = True
        self._all_closed = asyncio.get_running_loop().create_future()
        for connection in list(self.admitted):
            connection.finish()
        if not self.admitted:
            self._all_closed.set_result(None)

    async def wait_closed(self, timeout: float) -> bool:
        """After :meth:`stop_reading`: until every connection closed, at most ``timeout``
        seconds; whether they all did."""
        assert self._all_closed is not None, "stop_reading() first"
        done, _ = await asyncio.wait({self._all_closed}, timeout=timeout)
        return bool(done)


class HttpProtocol(asyncio.Protocol):
    """One connection: llhttp parses, the handler answers each request in turn."""

    def __init__(
        self,
        handler: Handler,
        limits: Limits,
        on_reject: RejectHook | None,
        connections: _Connections | None = None,
    ) -> None:
        # Kept, not asked for: on Python 3.11 asyncio.get_running_loop() makes a getpid()
        # system call, and a request arms the connection's timer twice.
        self._loop = asyncio.get_running_loop()
        self._handler = handler
        self._limits = limits
        self._max_body = limits.max_body
        self._on_reject = on_reject
        self._connections = connections or _Connections(limits.max_connections)
        self._admitted = False
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._client = "?"
        # The request being received.
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._by_name: dict[str, str] = {}
        self._body: list[bytes] = []
        self._receiving = False
        """A request has begun and is not complete."""
        self._in_body = False
        """... and its head is complete."""
        self._head_bytes = 0
        self._body_bytes = 0
        self._read_size = 0
        self._completed = 0
        """Requests completed on this connection: tells whether a read stayed in one request."""
        self._keep_alive = True
        self._version = "1.1"
        self._expects_continue = False
        # Requests received, answered one at a time and in order.
        self._queue: deque[tuple[Request, bool] | _Refused] = deque()
        self._busy = False
        self._done_reading = False
        """No further byte is parsed: a request asked to close, or one was refused."""
        self._last_answers = False
        """No request follows those queued (the client sent EOF, or the server is
        stopping): the last answer closes the connection."""
        self._paused = False
        self._write_paused = False
        """The client is not reading our answers: none is sent until it does."""
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._on_deadline: Callable[[], None] | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not subclass asyncio's.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._client = f"{peer[0]}:{peer[1]}"
        if not self._connections.admit(self):
            self._turn_away()
            return
        self._admitted = True
        if self._connections.stopping:
            self.finish()
            return
        self._connections.idle[self] = None
        self._arm_timer(self._limits.idle_timeout, self._close)

    def data_received(self, data: bytes) -> None:
        if self._done_reading:
            return  # after a request that closes the connection, or a refused one (see _refuse)
        in_body = self._in_body
        body_bytes = self._body_bytes
        completed = self._completed
        self._read_size = len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            # Once reading is done, the error is about bytes no one will read:
            # ours (_StopParsing) or a request after one that asked to close.
            if not self._done_reading:
                self._fail(400, f"malformed request: {error}")
        else:
            # The limits count the bytes received, not what llhttp hands over, so that
            # chunk framing, padding and extensions cost what they weigh. A read that
            # ends a request and starts the next is not counted against the next one:
            # the count is short by at most one read (see MAX_HEAD, Limits.max_body).
            if self._completed == completed and self._receiving:
                if in_body:
                    self._body_bytes = body_bytes + len(data)
                    if self._body_bytes > self._max_body:
                        self._fail(413, f"body over the limit of {self._max_body} bytes")
                elif not self._in_body:
                    self._head_bytes += len(data)
                    if self._head_bytes > MAX_HEAD:
                        self._fail(431, "request headers too large")
        if not self._busy:
            self._next()
        waiting = self._busy or self._write_paused
        if waiting and self._queue and not self._paused and self._transport is not None:
            # A client pipelining ahead of our answers: read no more until we catch up.
            self._paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        """The client is done sending (``shutdown(SHUT_WR)``): still answer what it sent."""
        self._last_answers = True
        if self._receiving and not self._done_reading:
            self._fail(400, "request cut short: the client stopped sending in the middle")
            if not self._busy:
                self._next()
            return True
        return self._busy or bool(self._queue)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None
        self._queue.clear()
        self._done_reading = True
        self._release()

    def pause_writing(self) -> None:
        """The client reads none of our answers (the socket buffer is full).

        Reading, and so answering, stops until it does, or the connection is dropped
        after ``Limits.read_timeout``: a client that pipelines requests and never reads
        would otherwise make the server queue answers without end and hold its slot.
        """
        self._write_paused = True
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._arm_timer(self._limits.read_timeout, self._abort)

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._busy and self._transport is not None:
            self._next()

    # llhttp callbacks, in the order llhttp calls them

    def on_message_begin(self) -> None:
        self._receiving = True
        self._url = b""
        self._headers = []
        self._by_name = {}
        self._body = []
        self._body_bytes = 0
        self._connections.idle.pop(self, None)
        # The first byte of a request starts the clock for the whole request.
        self._arm_timer(self._limits.read_timeout, self._too_slow)

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_body:
            return  # a trailer field: metadata about the transfer, dropped
        field = name.decode("latin-1")
        # llhttp keeps whitespace after the value; HTTP says it is not part of it.
        text = value.decode("latin-1").rstrip(" \t")
        self._headers.append((field, text))
        self._by_name[field.lower()] = text

    def on_headers_complete(self) -> None:
        self._in_body = True
        if self._head_bytes + self._read_size > MAX_HEAD and self._head_size() > MAX_HEAD:
            self._stop(431, "request headers too large")
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            self._stop(505, f"HTTP/{version} is not supported")
        if version == "1.0" and "transfer-encoding" in self._by_name:
            # HTTP/1.0 has no chunked framing: a 1.0 proxy in front would see where this
            # request ends differently (RFC 9112 section 6.1: faulty framing).
            self._stop(400, "Transfer-Encoding in an HTTP/1.0 request")
        if parser.should_upgrade():
            # Refused here, or llhttp would skip the body and raise HttpParserUpgrade.
            self._stop(400, "protocol upgrades (CONNECT, Upgrade:) are not supported")
        self._version = version
        self._keep_alive = parser.should_keep_alive()
        by_name = self._by_name
        if "transfer-encoding" in by_name:
            codings = [
                coding.strip().lower()
                for name, value in self._headers
                if name.lower() == "transfer-encoding"
                for coding in value.split(",")
            ]
            if codings != ["chunked"]:
                # Only chunked framing is ours to undo; gzip and the like change the bytes.
                quoted = ", ".join(codings)[:80]  # the client's text: short, and repr-escaped
                self._stop(501, f"Transfer-Encoding {quoted!r} is not supported")
        length = by_name.get("content-length")
        if length is not None and int(length) > self._max_body:
            self._stop(413, f"body of {length} bytes is over the limit of {self._max_body} bytes")
        if version == "1.1" and by_name.get("expect", "").lower() == "100-continue":
            # curl and others wait for it before sending a body over 1 KiB.
            self._expects_continue = True
            if not self._busy and not self._queue:
                self._send_continue()

    def _head_size(self) -> int:
        """The head's size as parsed, for a head that ended in a large read (the reads
        before it are counted as they come); padding llhttp skips is not in it."""
        fields = sum(len(name) + len(value) + 4 for name, value in self._headers)
        return len(self._url) + fields

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._body_bytes += len(body)

    def on_message_complete(self) -> None:
        self._receiving = False
        self._in_body = False
        self._expects_continue = False
        self._head_bytes = 0
        self._completed += 1
        self._cancel_timer()
        if self._body_bytes > self._max_body:
            self._stop(413, f"body over the limit of {self._max_body} bytes")
        body = self._body
        request = Request(
            method=self._parser.get_method().decode("ascii"),
            target=self._url.decode("latin-1"),
            headers=self._headers,
            body=body[0] if len(body) == 1 else b"".join(body),
            client=self._client,
            by_name=self._by_name,
            http_version=self._version,
        )
        self._queue.append((request, self._keep_alive))
        if not self._keep_alive:
            # RFC 9112 section 9.6: no further request on this connection is processed.
            self._done_reading = True

    # answering

    def _next(self) -> None:
        """Answer the requests received, oldest first, one at a time."""
        queue = self._queue
        while queue and not self._busy and not self._write_paused:
            item = queue.popleft()
            if isinstance(item, _Refused):
                self._refuse(item.status, item.reason)
                return
            request, keep_alive = item
            try:
                outcome = self._handler(request)
            except Exception as bug:
                outcome = self._internal_error(bug)
            if isinstance(outcome, Later) and outcome.response is not None:
                # Answered already: sent in this loop, not from a callback, or a read of
                # many pipelined requests would nest a call per request.
                outcome = outcome.response
            if isinstance(outcome, Response):
                self._answer(request, keep_alive, outcome)
                continue
            self._busy = True
            if isinstance(outcome, Later):
                outcome.when_answered(partial(self._answered_later, request, keep_alive))
                return
            if not isinstance(outcome, asyncio.Future):
                outcome = asyncio.ensure_future(outcome)
            outcome.add_done_callback(partial(self._answered_by_future, request, keep_alive))
            return
        if self._busy or self._write_paused:
            return
        if not self._done_reading and self._transport is not None:
            self._settle()

    def _internal_error(self, bug: Exception) -> Response:
        """A bug of the handler: 500 (the sender retries), and said, not silent."""
        if self._on_reject is not None:
            self._on_reject(self._client, 500, f"internal error in mhw: {bug!r}"[:300])
        return _INTERNAL_ERROR

    def _answered_later(self, request: Request, keep_alive: bool, response: Response) -> None:
        self._busy = False
        self._answer(request, keep_alive, response)
        self._next()

    def _answered_by_future(
        self, request: Request, keep_alive: bool, done: asyncio.Future[Response]
    ) -> None:
        if done.cancelled():  # shutdown cut it short
            response = _SHUTTING_DOWN
        elif (bug := done.exception()) is not None:
            response = self._internal_error(cast(Exception, bug))
        else:
            response = done.result()
        self._answered_later(request, keep_alive, response)

    def _answer(self, request: Request, keep_alive: bool, response: Response) -> None:
        transport = self._transport
        if transport is None:
            return
        if self._last_answers and not self._queue:
            keep_alive = False
        if keep_alive:
            connection = "keep-alive" if request.http_version == "1.0" else None
        else:
            connection = "close"
        if response.stream is not None:
            self._hand_over(response, response.stream)
            return
        # A HEAD answer has a GET answer's head and no content (RFC 9110 section 9.3.2).
        transport.write(_encode(response, connection, request.method == "HEAD"))
        if not keep_alive:
            self._close()

    def _hand_over(
        self, response: Response, stream: Callable[[asyncio.Transport], asyncio.BaseProtocol]
    ) -> None:
        """Send the head, then give the connection to a stream (see ``Response.stream``):
        nothing more is read as requests, answered or timed here."""
        transport = self._transport
        assert transport is not None
        transport.write(_encode.__wrapped__(response, "close", False))
        self._cancel_timer()
        self._done_reading = True
        self._queue.clear()
        self._transport = None
        self._release()
        transport.set_protocol(stream(transport))
        if self._paused:
            self._paused = False
            transport.resume_reading()

    def _settle(self) -> None:
        """Nothing waits for an answer: read on, and time the client, not ourselves."""
        transport = self._transport
        assert transport is not None
        if self._paused:
            self._paused = False
            transport.resume_reading()
            if self._receiving:
                # Its clock ran while we were not reading: a fresh one, so we are not the cause.
                self._arm_timer(self._limits.read_timeout, self._too_slow)
        # (After the client's EOF no answer keeps the connection, see _answer.)
        if self._receiving:
            if self._expects_continue:
                self._send_continue()
        else:
            self._connections.idle[self] = None
            self._arm_timer(self._limits.idle_timeout, self._close)

    def _send_continue(self) -> None:
        self._expects_continue = False
        if self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    # refusing

    def _fail(self, status: int, reason: str) -> None:
        """Stop reading, and refuse once the requests received before are answered."""
        self._done_reading = True
        self._receiving = self._in_body = False
        self._cancel_timer()
        self._queue.append(_Refused(status, reason))

    def _stop(self, status: int, reason: str) -> None:
        """``_fail`` from inside a parser callback: the rest of the bytes fed are dropped."""
        self._fail(status, reason)
        raise _StopParsing(reason)

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` and close, after letting the client finish sending.

        Closing a socket with unread bytes makes the kernel send a reset, and the
        reset can destroy the answer before the client reads it: a client sending a
        body over the limit would see "connection reset" instead of 413. So the
        connection closes its sending side, then reads and drops what still comes,
        until the client closes too or ``LINGER_SECONDS`` pass (a staged close, as
        RFC 9112 section 9.6 describes and nginx's lingering_close does).
        """
        if self._on_reject is not None:
            self._on_reject(self._client, status, reason)
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        # Not through the cache: a reason can quote the client, and would evict the answers.
        refusal = Response(status, (reason + "\n").encode())
        transport.write(_encode.__wrapped__(refusal, "close", False))
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if not transport.can_write_eof():
            self._close()
            return
        transport.write_eof()
        self._arm_timer(LINGER_SECONDS, self._close)
        # Answered and only draining: the first to go when the cap is reached, so that
        # a stream of refused requests cannot hold the connections for LINGER_SECONDS.
        self._connections.idle[self] = None

    def _turn_away(self) -> None:
        """Over the connection cap: say so and close at once (no linger: the file
        descriptor is what is scarce). A reset may overtake the 503; either way the
        sender sees a failed delivery and retries it."""
        self._done_reading = True
        limit = self._connections.limit
        if self._on_reject is not None:
            self._on_reject(self._client, 503, f"{limit} connections already open")
        if self._transport is not None:
            self._transport.write(_encode(_TOO_MANY_CONNECTIONS, "close", False))
            self._transport.close()

    def finish(self) -> None:
        """The server is stopping: read no more, answer the requests received, then close.

        A request still arriving is answered 503 (the sender retries it elsewhere or later);
        a connection with nothing to answer, idle or lingering after a refusal, closes now.
        """
        self._done_reading = True
        self._last_answers = True
        self._cancel_timer()
        transport = self._transport
        if transport is None:
            return
        if self._busy or self._queue:
            if not self._paused:
                self._paused = True
                transport.pause_reading()
            return
        if self._receiving and not transport.is_closing():
            transport.write(_encode(_SHUTTING_DOWN, "close", False))
        self._close()

    def evict(self) -> None:
        """Close this idle connection to make room for a new one (see ``_Connections``)."""
        self._release()
        self._close()

    def _release(self) -> None:
        """Give the connection's place under the cap back (once)."""
        if self._admitted:
            self._admitted = False
            self._connections.release(self)

    def _close(self) -> None:
        self._cancel_timer()
        self._done_reading = True
        self._queue.clear()
        self._connections.idle.pop(self, None)
        transport = self._transport
        if transport is None:
            return
        transport.close()
        if transport.get_write_buffer_size():
            # close() waits for the client to read what is buffered, which a client that
            # reads nothing never does: it gets LINGER_SECONDS, and its place now.
            self._release()
            self._arm_timer(LINGER_SECONDS, self._abort)

    def _abort(self) -> None:
        self._release()
        if self._transport is not None:
            self._transport.abort()

    # timers

    def _too_slow(self) -> None:
        self._fail(408, "request not received in time")
        if not self._busy:
            self._next()

    def _arm_timer(self, seconds: float, callback: Callable[[], None]) -> None:
        """Set the connection's one deadline; the timer is reused, not re-created per request."""
        loop = self._loop
        self._deadline = loop.time() + seconds
        self._on_deadline = callback
        if self._timer is None or self._timer.when() > self._deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(self._deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._on_deadline is None:
            return
        loop = self._loop
        if loop.time() >= self._deadline:
            callback, self._on_deadline = self._on_deadline, None
            callback()
        else:
            self._timer = loop.call_at(self._deadline, self._check_deadline)

    def _cancel_timer(self) -> None:
        # Leave the timer to fire and find nothing to do: cheaper than cancelling per request.
        self._on_deadline = None


_INTERNAL_ERROR = Response(500, b"internal error in mhw\n")
_SHUTTING_DOWN = Response(503, b"mhw is shutting down; retry later\n")
_TOO_MANY_CONNECTIONS = Response(
    503, b"mhw has too many connections open; retry later\n", (("retry-after", "1"),)
)


@lru_cache(maxsize=64)
def _encode(response: Response, connection: str | None, head_only: bool) -> bytes:
    """A response on the wire; cached, since a listener sends the same few thousands of times.

    ``connection`` is the Connection header: "close", "keep-alive" (for an HTTP/1.0
    client, which closes after each answer unless told otherwise), or None.
    """
    head = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
    names = {name.lower() for name, _ in response.headers}
    head += [f"{name}: {value}" for name, value in response.headers]
    if "content-type" not in names:
        head.append("content-type: text/plain; charset=utf-8")
    if response.stream is None:
        head.append(f"content-length: {len(response.body)}")
    if connection is not None:
        head.append(f"connection: {connection}")
    encoded = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    return encoded if head_only else encoded + response.body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


class Server:
    """A server :func:`serve` started: its listening sockets and its connections."""

    def __init__(self, server: asyncio.Server, connections: _Connections) -> None:
        self._server = server
        self._connections = connections

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return self._server.sockets

    def close(self) -> None:
        """Stop accepting connections and reading requests on those open: what they
        received is still answered, then each closes (see :meth:`wait_closed`)."""
        self._server.close()
        if not self._connections.stopping:
            self._connections.stop_reading()

    async def wait_closed(self, timeout: float) -> bool:
        """After :meth:`close`: until every connection has answered and closed, at most
        ``timeout`` seconds; whether they all did."""
        return await self._connections.wait_closed(timeout)


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    limits: Limits | None = None,
    on_reject: RejectHook | None = None,
) -> Server:
    """Start serving; the returned server is already accepting connections."""
    loop = asyncio.get_running_loop()
    chosen = limits or Limits()
    connections = _Connections(chosen.max_connections)
    server = await loop.create_server(
        lambda: HttpProtocol(handler, chosen, on_reject, connections),
        host,
        port,
        reuse_address=True,
        # asyncio's default of 100 overflows under a burst of connections, and a sender
        # whose SYN is dropped waits a second or more to try again (uvicorn uses 2048).
        backlog=2048,
    )
    return Server(server, connections)
