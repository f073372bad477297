"""Requests where mhw is the client, bounded in time and in bytes: one helper for every site.

httpx's ``timeout`` bounds each network operation, not the exchange: a server that
sends one byte a second, or an endless body, keeps ``client.post`` busy (and its memory
growing) for as long as it likes. Measured on main: a forward target streaming an
endless body took ``mhw listen`` from 50 MiB to 633 MiB in 12 s, past
``--forward-timeout 3``. So every request mhw makes goes through :func:`request`,
which puts one deadline on the whole exchange (connect, send, and the entire answer)
and keeps only the body bytes its caller keeps, reading and discarding the rest up to
``read_limit`` and then closing the connection.

Bodies are asked for and read as sent (``Accept-Encoding: identity``, raw bytes):
decoding a compressed answer could turn one 64 KiB read into 64 MiB, past any limit.

httpx is imported inside functions: ``mhw``'s start-up time is measured, and most
commands never make a request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from mh_webhook_cli import __version__
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.errors import DeadlineExceeded

if TYPE_CHECKING:
    import ssl

    import httpx

USER_AGENT = f"mhw/{__version__}"
"""Every request mhw makes says what sent it: deliveries, forwards and API calls alike."""
READ_LIMIT = 1024 * 1024
"""Body bytes read (kept or not) before giving up on an answer and closing its connection."""
FORWARDED_HEADER = "mhw-forwarded"
"""Set on every request ``mhw listen`` forwards. A listener stores and shows a request that
carries it but never forwards it again, so listeners forwarding to each other (A to B to A),
or to themselves through a tunnel, cannot loop."""

T = TypeVar("T")
Headers = Mapping[str, str] | Sequence[tuple[str, str]]
BodySink = Callable[[bytes], object]


@dataclass(frozen=True)
class Answer:
    """A response as far as it was read."""

    status: int
    headers: list[tuple[str, str]]
    """As received, names lower-cased: a repeated header once for each time it was sent."""
    body: bytes
    """The first ``keep`` bytes of the body, as sent (not decompressed)."""
    size: int
    """Body bytes read, kept or not; at least ``read_limit`` when ``complete`` is False."""
    complete: bool
    """The whole body was read; False when it ran past ``read_limit`` and was cut off."""
    latency_ms: float
    """From the start of the request to the end of the reading."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline: float,
    keep: int,
    read_limit: int = READ_LIMIT,
    content: bytes | None = None,
    json: Any = None,
    headers: Headers = (),
    idle_timeout: float | None = None,
    sink: Callable[[httpx.Response], BodySink | None] | None = None,
) -> Answer:
    """Send one request and read its answer within ``deadline`` seconds, keeping ``keep`` bytes.

    Raises :class:`DeadlineExceeded` at the deadline and ``httpx.HTTPError`` for every
    other failure; either way the connection is closed. Redirects are never followed:
    each hop is a new request, with its own bounds, that the caller decides to make.

    ``idle_timeout`` bounds each network read on its own (for long downloads, whose
    deadline is generous); by default only the deadline applies. ``sink``, called with the
    response once its head has arrived, may return where the body goes instead (a file):
    then nothing is kept and ``read_limit`` is the sink's business.
    """
    started = time.perf_counter()
    phase = ["connecting"]

    async def trace(event: str, info: Mapping[str, Any]) -> None:
        # httpcore's progress events: they name the phase a timeout interrupts.
        if event == "http11.send_request_headers.started":
            phase[0] = "sending the request"
        elif event == "http11.receive_response_headers.started":
            phase[0] = "waiting for the response"

    async def exchange() -> Answer:
        async with client.stream(
            method,
            url,
            content=content,
            json=json,
            headers=[*_pairs(headers), (b"Accept-Encoding", b"identity")],
            timeout=idle_timeout,
            follow_redirects=False,
            extensions={"trace": trace},
        ) as response:
            phase[0] = f"reading the body of a {response.status_code} answer"
            write = sink(response) if sink is not None else None
            kept = bytearray()
            size = 0
            complete = True
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if write is not None:
                    write(chunk)
                    continue
                if len(kept) < keep:
                    kept += chunk[: keep - len(kept)]
                if size > read_limit:
                    complete = False  # leaving the block closes the connection mid-body
                    break
            return Answer(
                status=response.status_code,
                headers=response.headers.multi_items(),
                body=bytes(kept),
                size=size,
                complete=complete,
                latency_ms=(time.perf_counter() - started) * 1000,
            )

    try:
        return await asyncio.wait_for(exchange(), deadline)
    except asyncio.TimeoutError:
        raise DeadlineExceeded(deadline, phase[0]) from None


def describe_failure(
    failure: BaseException, timeout: float, *, tls_fix: str = "see --cacert, --insecure"
) -> str:
    """One line naming what went wrong on the network, in the words a developer would search.

    ``tls_fix`` is what to do about a rejected certificate, which depends on the command.
    """
    import socket
    import ssl

    import httpx

    if isinstance(failure, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)):
        phases: dict[type[BaseException], str] = {
            httpx.ConnectTimeout: " connecting",
            httpx.ReadTimeout: " waiting for the response",
            httpx.WriteTimeout: " sending the request",
        }
        phase = phases.get(type(failure), "")
        if isinstance(failure, DeadlineExceeded):
            phase = f" {failure.phase}"
        return (
            f"timed out after {timeout:g} s{phase} "
            f"(Magic Hour gives a handler {MAGIC_HOUR_TIMEOUT_SECONDS:g} s)"
        )
    cause: BaseException | None = failure
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate rejected: {cause.verify_message} ({tls_fix})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or cause} (is the server speaking HTTPS?)"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused: nothing is listening at that address and port"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name: {cause.strerror}"
        if isinstance(cause, asyncio.IncompleteReadError):
            return "the server closed the connection before answering"
        if isinstance(cause, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return "the server reset the connection before answering (it crashed, or is full)"
        cause = cause.__cause__ or cause.__context__
    text = str(failure).strip().splitlines()
    return f"{type(failure).__name__}: {text[0]}" if text else type(failure).__name__


def _pairs(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Caller's headers without any Accept-Encoding (:func:`request` sets its own), as bytes.

    httpx encodes a text value as ASCII, and a forwarded request may carry any byte a sender
    put in a header (mhw decodes them as latin-1, which gives back exactly those bytes); a
    value beyond latin-1 can only be a user's own ``-H``, and goes as UTF-8.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [
        (name.encode("latin-1"), _wire(value))
        for name, value in items
        if name.lower() != "accept-encoding"
    ]


def _wire(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


RECEIVE_BUFFER = 64 * 1024
"""The socket receive buffer of :func:`small_read_client`'s connections."""


def small_read_client(verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for answers mhw keeps little of (forwards, ``mhw send``).

    Its sockets get a small receive buffer. On uvloop (``mhw listen`` runs on it) one
    readiness event lets libuv read up to 32 times before anyio pauses the transport, so
    a fast endless answer puts up to 8 MiB per connection in memory at once, however
    little is kept: 10 forwards at once to such a target peaked at 62 MiB of Python
    memory, and at 2 MiB with this buffer (tracemalloc, loopback). Webhook answers are
    small, so a small window costs them nothing; downloads do not use this client.
    """
    import socket

    import httpx

    option = (socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    transport = httpx.AsyncHTTPTransport(verify=verify, socket_options=[option])
    return httpx.AsyncClient(transport=transport)


class BlockingClient:
    """An ``httpx.AsyncClient`` for synchronous callers (``mhw send``), on a loop of its own.

    Why not ``httpx.Client``: a synchronous read cannot be interrupted at a deadline, and
    its per-read timeout is fixed when the body starts, so a server trickling bytes keeps
    it past any total. Running the same :func:`request` on a private event loop gives
    ``mhw send`` exactly the bounds of every other client, from one implementation.
    """

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self._loop = asyncio.new_event_loop()
        self.client = small_read_client(verify)

    def run(self, work: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """Run ``work(client)`` to completion and return its result."""
        return self._loop.run_until_complete(work(self.client))

    def close(self) -> None:
        self._loop.run_until_complete(self.client.aclose())
        self._loop.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
