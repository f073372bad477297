"""A small, fast HTTP/1.1 server for receiving webhooks, on asyncio and nothing else.

Why not h11 or a framework: measured on this project's 2-core machine with wrk
(one core each, 32 connections, a 523-byte webhook), an h11 server answering a
constant 200 managed about 4,000 requests/s, a hand-written parser on
``asyncio.Protocol`` about 35,000. The listener must outrun a FastAPI handler
by 2x while verifying and storing every request, so the parser is ours. It
only has to serve webhook senders: one request at a time per connection
(pipelined requests wait their turn), POST bodies framed by Content-Length or
chunked encoding, kept byte for byte.

Every limit answers with a status a sender understands and then closes the
connection: 400 malformed, 408 too slow, 413 body too large, 431 headers too
large. Nothing a client sends can stop the server from serving others.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from typing import Union, cast

MAX_BODY_DEFAULT = 1024 * 1024
MAX_HEAD = 32 * 1024
"""Request line and headers together; larger gets 431 (nginx's default is 8-32 KiB)."""
LINGER_SECONDS = 2.0
"""How long a refused request's connection keeps reading before it closes (see _refuse)."""

HOP_BY_HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "expect"}
)
"""Headers about one connection, not the message: never copied when re-sending a request."""

_REQUEST_LINE = re.compile(r"([A-Z]{1,20}) (\S{1,8192}) HTTP/(1\.[01])")
_HEADER_FIELD = re.compile(
    r"(?<=\r\n)([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*"
    r"(?:([^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?)[ \t]*)?\r\n"
)
"""One header line, name and value: a line it does not match is malformed. No control
characters other than tab in a value (a bare CR smuggles). The value starts and ends with a
visible character, so the whitespace around it can never also be part of it: with any
overlap, a line of spaces ending in a control character backtracks quadratically (32 KiB
of them held the loop for 14 s), and a lazy value cost half the parser's time."""
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]{0,256})?")
_DIGITS = re.compile(r"[0-9]{1,15}")


@dataclass(slots=True)
class Request:
    """One request as received: the body is the exact bytes, de-chunked if it was chunked.

    Treat it as read-only. It is not frozen only because a frozen dataclass's
    ``__init__`` costs a microsecond more, and a listener builds thousands a second.
    """

    method: str
    target: str
    headers: list[tuple[str, str]]
    """In the order received, repeated headers kept."""
    body: bytes
    client: str
    by_name: dict[str, str]
    """Lower-cased names to values (a repeated header gives its last, as everywhere in mhw):
    the parser builds it anyway, and a listener looks headers up several times a request."""
    http_version: str = "1.1"

    def header(self, name: str) -> str | None:
        return self.by_name.get(name.lower())

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Union[Response, Awaitable[Response]]]  # noqa: UP007
"""Answers a request: at once, or later through a future or coroutine.

A plain future (such as a database commit's) is awaited without a task per
request, which matters at thousands of requests a second.
"""
RejectHook = Callable[[str, int, str], None]
"""Called as (client, status, reason) when a request is refused before reaching the handler."""


@dataclass(frozen=True)
class Limits:
    max_body: int = MAX_BODY_DEFAULT
    read_timeout: float = 10.0
    """Seconds a client may take to send one whole request once it has started; then 408."""
    idle_timeout: float = 75.0
    """Seconds a kept-alive connection may stay silent before it is closed quietly."""


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HttpProtocol(asyncio.Protocol):
    """One connection: parse a request, hand it to the handler, answer, repeat."""

    def __init__(self, handler: Handler, limits: Limits, on_reject: RejectHook | None) -> None:
        # Kept, not asked for: on Python 3.11 asyncio.get_running_loop() makes a getpid()
        # system call, and a request arms the connection's timer twice.
        self._loop = asyncio.get_running_loop()
        self._handler = handler
        self._limits = limits
        self._on_reject = on_reject
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._client = "?"
        self._busy = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._on_deadline: Callable[[], None] | None = None
        self._continue_sent = False
        self._eof = False
        self._lingering = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not subclass asyncio's.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._client = f"{peer[0]}:{peer[1]}"
        self._arm_timer(self._limits.idle_timeout, self._idle)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a refused request, read only to be dropped (see _refuse)
        if not self._buffer and not self._busy:
            # The first byte of a new request starts the clock for the whole request.
            self._arm_timer(self._limits.read_timeout, self._too_slow)
        self._buffer += data
        if not self._busy:
            self._process()
        elif len(self._buffer) > self._limits.max_body + MAX_HEAD and self._transport is not None:
            # A client pipelining far ahead of our answers: stop reading until we catch up.
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        """The client is done sending (``shutdown(SHUT_WR)``): still answer what it sent."""
        self._eof = True
        return self._busy

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None

    # parsing

    def _process(self) -> None:
        try:
            parsed = self._parse()
        except _Refused as refused:
            self._refuse(refused.status, refused.reason)
            return
        if parsed is None:
            return
        request, consumed = parsed
        del self._buffer[:consumed]
        self._cancel_timer()
        # While busy, further bytes are only buffered (pausing the socket per request
        # costs two epoll calls; see data_received for the bound on the buffer).
        self._busy = True
        try:
            outcome = self._handler(request)
        except Exception:
            outcome = _INTERNAL_ERROR
        if isinstance(outcome, Response):
            self._answer(request, outcome)
            return
        if not isinstance(outcome, asyncio.Future):
            outcome = asyncio.ensure_future(outcome)
        outcome.add_done_callback(lambda done: self._answer(request, _result(done)))

    def _parse(self) -> tuple[Request, int] | None:
        """A complete request from the buffer and how many bytes it used, or None for more."""
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise _Refused(431, "request headers too large")
            first_line_end = self._buffer.find(b"\n")
            first_line = self._buffer[: max(first_line_end - 1, 0)].decode("latin-1")
            if first_line_end >= 0 and not _REQUEST_LINE.fullmatch(first_line):
                raise _Refused(400, "not an HTTP request")
            return None
        if head_end > MAX_HEAD:
            raise _Refused(431, "request headers too large")
        # One decode and one regex pass over the whole head: per-line work in Python
        # cost more than everything else the parser does (see bench/listen.py).
        head = self._buffer[: head_end + 2].decode("latin-1")
        line_end = head.find("\r\n")
        start = _REQUEST_LINE.fullmatch(head, 0, line_end)
        if start is None:
            raise _Refused(400, "not an HTTP request")
        headers: list[tuple[str, str]] = _HEADER_FIELD.findall(head, line_end + 2)
        if len(headers) != head.count("\r\n", line_end + 2):
            raise _Refused(400, "malformed header line")
        by_name = {name.lower(): value for name, value in headers}
        if len(by_name) < len(headers):  # a repeated header: it may be a smuggling attempt
            lengths = {value for name, value in headers if name.lower() == "content-length"}
            if len(lengths) > 1:
                raise _Refused(400, "conflicting Content-Length headers")
        body_start = head_end + 4

        encoding = by_name.get("transfer-encoding", "").strip().lower()
        if encoding not in ("", "chunked"):
            # Only chunked framing is ours to undo; gzip and the like would change the bytes.
            raise _Refused(501, f"Transfer-Encoding {encoding!r} is not supported")
        chunked = encoding == "chunked"
        if chunked and "content-length" in by_name:
            raise _Refused(400, "both Content-Length and chunked encoding")
        if chunked:
            decoded = self._dechunk(body_start)
            if decoded is None:
                self._maybe_continue(by_name)
                return None
            body, end = decoded
        else:
            length_text = by_name.get("content-length", "0").strip()
            if not _DIGITS.fullmatch(length_text):
                raise _Refused(400, "invalid Content-Length")
            length = int(length_text)
            if length > self._limits.max_body:
                raise _Refused(
                    413,
                    f"body of {length} bytes is over the limit of {self._limits.max_body} bytes",
                )
            end = body_start + length
            if len(self._buffer) < end:
                self._maybe_continue(by_name)
                return None
            body = bytes(self._buffer[body_start:end])
        request = Request(
            method=start.group(1),
            target=start.group(2),
            headers=headers,
            body=body,
            client=self._client,
            http_version=start.group(3),
            by_name=by_name,
        )
        return request, end

    def _dechunk(self, position: int) -> tuple[bytes, int] | None:
        body = bytearray()
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0 or line_end - position > 300:
                if len(buffer) - position > 300:
                    raise _Refused(400, "malformed chunk size")
                return None
            size_match = _CHUNK_SIZE.fullmatch(buffer, position, line_end)
            if size_match is None:
                raise _Refused(400, "malformed chunk size")
            size = int(size_match.group(1), 16)
            position = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", position - 2)
                if trailer_end < 0:
                    if len(buffer) - position > MAX_HEAD:
                        raise _Refused(431, "chunked trailers too large")
                    return None
                return bytes(body), trailer_end + 4
            if len(body) + size > self._limits.max_body:
                raise _Refused(
                    413, f"chunked body is over the limit of {self._limits.max_body} bytes"
                )
            if len(buffer) < position + size + 2:
                return None
            if buffer[position + size : position + size + 2] != b"\r\n":
                raise _Refused(400, "chunk longer than its size")
            body += buffer[position : position + size]
            position += size + 2

    def _maybe_continue(self, by_name: dict[str, str]) -> None:
        """curl and others wait for ``100 Continue`` before sending a body over 1 KiB."""
        if by_name.get("expect", "").lower() == "100-continue" and not self._continue_sent:
            self._continue_sent = True
            if self._transport is not None:
                self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    # answering

    def _answer(self, request: Request, response: Response) -> None:
        keep_alive = _keeps_alive(request) and not self._eof
        self._write(response, keep_alive)
        if not keep_alive:
            self._close()
            return
        self._busy = False
        self._continue_sent = False
        if self._transport is None:
            return
        if self._transport.is_reading() is False:
            self._transport.resume_reading()
        if self._buffer:
            # A pipelined request is waiting; parse it on the next loop turn, not recursively.
            self._arm_timer(self._limits.read_timeout, self._too_slow)
            self._loop.call_soon(self._process)
        else:
            self._arm_timer(self._limits.idle_timeout, self._idle)

    def _write(self, response: Response, keep_alive: bool) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.write(_encode(response, keep_alive))

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
        self._write(Response(status, (reason + "\n").encode()), keep_alive=False)
        if self._transport is None or not self._transport.can_write_eof():
            self._close()
            return
        self._lingering = True
        self._buffer.clear()
        self._transport.write_eof()
        self._arm_timer(LINGER_SECONDS, self._close)

    def _close(self) -> None:
        self._cancel_timer()
        self._buffer.clear()
        if self._transport is not None:
            self._transport.close()

    # timers

    def _too_slow(self) -> None:
        self._refuse(408, "request not received in time")

    def _idle(self) -> None:
        self._close()

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


def _result(done: asyncio.Future[Response]) -> Response:
    """The handler's answer; 503 when shutdown cut it short, 500 for a bug of ours."""
    if done.cancelled():
        return _SHUTTING_DOWN
    if done.exception() is not None:
        return _INTERNAL_ERROR
    return done.result()


@lru_cache(maxsize=64)
def _encode(response: Response, keep_alive: bool) -> bytes:
    """A response on the wire; cached, since a listener sends the same few thousands of times."""
    head = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
    names = {name.lower() for name, _ in response.headers}
    head += [f"{name}: {value}" for name, value in response.headers]
    if "content-type" not in names:
        head.append("content-type: text/plain; charset=utf-8")
    head.append(f"content-length: {len(response.body)}")
    if not keep_alive:
        head.append("connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body


def _keeps_alive(request: Request) -> bool:
    connection = (request.header("connection") or "").lower()
    if request.http_version == "1.0":
        return "keep-alive" in connection
    return "close" not in connection


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    limits: Limits | None = None,
    on_reject: RejectHook | None = None,
) -> asyncio.Server:
    """Start serving; the returned server is already accepting connections."""
    loop = asyncio.get_running_loop()
    chosen = limits or Limits()
    return await loop.create_server(
        lambda: HttpProtocol(handler, chosen, on_reject), host, port, reuse_address=True
    )
