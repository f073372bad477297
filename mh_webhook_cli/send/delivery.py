"""Send signed webhook requests to a handler, as Magic Hour does: the I/O edge of ``mhw send``.

The body is serialized once, compactly, and those exact bytes are both signed and sent, so a
handler that verifies the raw body sees precisely what was signed. Every network failure
(refused connection, DNS, TLS, timeout) becomes a :class:`SendResult` with an ``error`` line
rather than an exception, so a run over many requests reports each one and never a traceback.
Every request is bounded (see :mod:`mh_webhook_cli.send.client`): ``timeout`` is the time for
the whole exchange, and only :data:`RESPONSE_KEEP` bytes of an answer are kept.

httpx and httptools are imported inside the functions that use them: this module is
imported by other commands for its types, and they must not pay for either.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import ssl
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mh_webhook_cli import __version__

# Re-exported: the listener and the emulator name it as part of sending.
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS as MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from mh_webhook_cli.send.client import READ_LIMIT, BlockingClient, DeadlineExceeded, request

if TYPE_CHECKING:
    import httpx

DEFAULT_MAX_RETRY_SECONDS = 60.0
RETRY_BASE_DELAY_SECONDS = 1.0
RESPONSE_KEEP = 64 * 1024
"""Bytes of an answer ``mhw send`` keeps: all that ``--format json`` shows, and then some."""

USER_AGENT = f"mhw/{__version__}"


def serialize(event: Any) -> bytes:
    """Compact UTF-8 JSON, the way Magic Hour puts an event on the wire."""
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (json.loads reads "\ud800" as one, so a caller's text can hold
        # it) has no UTF-8 form: json_text writes it as its JSON escape.
        from mh_webhook_cli.core.json_text import dumps

        return dumps(event).encode()


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` as a pair; ValueError (one line) when it is not a header."""
    name, separator, value = text.partition(":")
    name = name.strip()
    if not separator or not name or any(c.isspace() for c in name):
        raise ValueError(f"invalid header {text!r}: expected 'Name: value'")
    if any(ord(c) < 32 and c != "\t" for c in value):
        raise ValueError(f"invalid header {text!r}: control characters in the value")
    return name, value.strip()


@dataclass(frozen=True)
class Signer:
    """How each request is signed: the secret, and the deliberate mistakes for negative tests.

    ``secret`` None sends no signature headers at all (``--no-sign``). ``timestamp_offset``
    shifts the signed timestamp from now (``-600`` makes a request a handler must reject as
    stale). ``bad_signature`` sends a well-formed but wrong signature: the HMAC of the body
    under another key, so it is 64 lowercase hex digits that simply do not match.
    """

    secret: str | None
    timestamp_offset: int = 0
    bad_signature: bool = False

    def headers(self, body: bytes, now: float | None = None) -> dict[str, str]:
        if self.secret is None:
            return {}
        timestamp = int(time.time() if now is None else now) + self.timestamp_offset
        key = "not-" + self.secret if self.bad_signature else self.secret
        return {SIGNATURE_HEADER: sign(key, timestamp, body), TIMESTAMP_HEADER: str(timestamp)}


@dataclass(frozen=True)
class Delivery:
    """One event to send: where, which event (for reports), the exact bytes, the extra headers."""

    url: str
    body: bytes
    event: str | None = None
    extra_headers: Sequence[tuple[str, str]] = ()

    def headers(self, signer: Signer, now: float | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers.update(signer.headers(self.body, now))
        headers.update(self.extra_headers)
        return headers


@dataclass(frozen=True)
class SendResult:
    """What happened to one delivery: the handler's answer, or one line on why there was none."""

    url: str
    event: str | None
    status: int | None
    latency_ms: float
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    """The first :data:`RESPONSE_KEEP` bytes of the answer's body."""
    response_size: int = 0
    """The body's length in bytes, or as far as mhw read it (see ``response_complete``)."""
    response_complete: bool = True
    """False when the body ran past the read limit and mhw stopped reading it."""
    error: str | None = None
    signature: str | None = None
    timestamp: int | None = None
    attempts: int = 1

    def ok(self, expect_status: int | str | None = None) -> bool:
        """A 2xx, or ``expect_status`` (401, or a class: "4xx") when the handler should refuse."""
        return self.status is not None and status_matches(self.status, expect_status)


def status_matches(status: int, expected: int | str | None) -> bool:
    """``status`` is 2xx when ``expected`` is None, else exactly ``expected`` or in its class."""
    if expected is None:
        return 200 <= status < 300
    if isinstance(expected, str) and expected.endswith("xx"):
        return str(status)[0] == expected[0]
    return str(status) == str(expected)


def tls_context(insecure: bool, cacert: str | None) -> ssl.SSLContext:
    """The TLS settings for every request of a run, built once so a bad ``--cacert`` fails early.

    ValueError (one line) when ``cacert`` cannot be loaded.
    """
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cacert is not None:
        try:
            context.load_verify_locations(cafile=cacert)
        except (OSError, ssl.SSLError) as failure:
            reason = getattr(failure, "strerror", None) or str(failure)
            raise ValueError(f"cannot load --cacert {cacert}: {reason}") from None
    return context


def make_client(tls: ssl.SSLContext) -> BlockingClient:
    """A client for single deliveries (redirects are never followed, as Magic Hour's aren't)."""
    return BlockingClient(verify=tls)


def describe_failure(
    failure: BaseException, timeout: float, *, tls_fix: str = "see --cacert, --insecure"
) -> str:
    """One line naming what went wrong on the network, in the words a developer would search.

    ``tls_fix`` is what to do about a rejected certificate, which depends on the command.
    """
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
        cause = cause.__cause__ or cause.__context__
    text = str(failure).strip().splitlines()
    return f"{type(failure).__name__}: {text[0]}" if text else type(failure).__name__


async def deliver(
    client: httpx.AsyncClient,
    delivery: Delivery,
    signer: Signer,
    timeout: float,
    *,
    keep: int = RESPONSE_KEEP,
    tls_fix: str = "see --cacert, --insecure",
) -> SendResult:
    """POST the delivery once, signed now, within ``timeout`` seconds for the whole exchange.

    Network failures and timeouts come back as ``error`` (with ``status`` None), never raised.
    Only ``keep`` bytes of the answer are kept; a body past the read limit is cut off
    (``response_complete`` False). ``tls_fix`` is what a rejected certificate should make
    the user do, which depends on the command (see :func:`describe_failure`).
    """
    import httpx

    headers = delivery.headers(signer)
    timestamp = headers.get(TIMESTAMP_HEADER)
    result = SendResult(
        url=delivery.url,
        event=delivery.event,
        status=None,
        latency_ms=0.0,
        signature=headers.get(SIGNATURE_HEADER),
        timestamp=None if timestamp is None else int(timestamp),
    )
    started = time.perf_counter()
    try:
        answer = await request(
            client,
            "POST",
            delivery.url,
            content=delivery.body,
            headers=headers,
            deadline=timeout,
            keep=keep,
        )
    except (httpx.HTTPError, DeadlineExceeded) as failure:
        latency_ms = (time.perf_counter() - started) * 1000
        error = describe_failure(failure, timeout, tls_fix=tls_fix)
        return replace(result, latency_ms=latency_ms, error=error)
    return replace(
        result,
        status=answer.status,
        latency_ms=answer.latency_ms,
        response_headers=answer.headers,
        response_body=answer.body,
        response_size=answer.size,
        response_complete=answer.complete,
    )


def send_once(
    client: BlockingClient, delivery: Delivery, signer: Signer, timeout: float
) -> SendResult:
    """:func:`deliver` for synchronous callers."""
    return client.run(lambda session: deliver(session, delivery, signer, timeout))


def send_with_retry(
    client: BlockingClient,
    delivery: Delivery,
    signer: Signer,
    timeout: float,
    *,
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS,
    base_delay: float = RETRY_BASE_DELAY_SECONDS,
    expect_status: int | str | None = None,
    on_retry: Callable[[SendResult, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendResult:
    """Send until the handler accepts, backing off like Magic Hour: 1 s, 2 s, 4 s, ...

    Every attempt carries the same body bytes (it is the same event, so a handler must
    deduplicate by ``payload.id``, never by signature), re-signed with a fresh timestamp:
    a retry is a new delivery, and reusing the first timestamp would make late retries
    look stale to a handler that checks the age. No retry starts after
    ``max_retry_seconds`` from the first attempt. ``on_retry`` hears about each failed
    attempt with the delay before the next one; ``base_delay`` is there for tests.
    """
    first = time.monotonic()
    delay = base_delay
    attempt = 1
    while True:
        result = send_once(client, delivery, signer, timeout)
        elapsed = time.monotonic() - first
        if result.ok(expect_status) or elapsed + delay > max_retry_seconds:
            return _with_attempts(result, attempt)
        if on_retry is not None:
            on_retry(_with_attempts(result, attempt), delay)
        sleep(delay)
        delay *= 2
        attempt += 1


def _with_attempts(result: SendResult, attempts: int) -> SendResult:
    return replace(result, attempts=attempts)


@dataclass(frozen=True)
class LoadSummary:
    """The outcome of a load test: throughput, latency percentiles and what came back."""

    url: str
    event: str | None
    count: int
    concurrency: int
    duration_s: float
    ok: int
    statuses: dict[int, int]
    errors: dict[str, int]
    latencies_ms: list[float] = field(repr=False)

    @property
    def failed(self) -> int:
        return self.count - self.ok

    @property
    def requests_per_second(self) -> float:
        return self.count / self.duration_s if self.duration_s > 0 else 0.0

    def percentile(self, fraction: float) -> float | None:
        """The latency below which ``fraction`` of the answered requests fell (nearest rank)."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1]

    @property
    def mean_ms(self) -> float | None:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else None


def load_test(
    delivery: Delivery,
    signer: Signer,
    *,
    count: int,
    concurrency: int,
    timeout: float,
    tls: ssl.SSLContext,
    expect_status: int | str | None = None,
    on_progress: Callable[[], None] | None = None,
) -> LoadSummary:
    """Send ``count`` deliveries with ``concurrency`` in flight over keep-alive connections.

    This path does not use httpx: on the 2-core machine it was measured on, 32 concurrent
    deliveries to a loopback server reached about 200 requests/s with an ``httpx.AsyncClient``
    and about 550/s with threads sharing an ``httpx.Client``, while a bare asyncio HTTP/1.1
    loop reached over 9,000/s. A load test must not measure its own client, so each of the
    ``concurrency`` asyncio tasks keeps one connection (:class:`_Connection`) and sends on it.
    Each request is signed as it is sent, so a long run never sends stale timestamps.
    """
    return asyncio.run(
        _load_test(delivery, signer, count, concurrency, timeout, tls, expect_status, on_progress)
    )


async def _load_test(
    delivery: Delivery,
    signer: Signer,
    count: int,
    concurrency: int,
    timeout: float,
    tls: ssl.SSLContext,
    expect_status: int | str | None,
    on_progress: Callable[[], None] | None,
) -> LoadSummary:
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    ok = 0
    remaining = count

    async def worker() -> None:
        nonlocal remaining, ok
        connection = _Connection(delivery.url, tls)
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                try:
                    status = await asyncio.wait_for(
                        connection.post(delivery.body, delivery.headers(signer)), timeout
                    )
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as failure:
                    connection.close()
                    errors[describe_failure(failure, timeout)] += 1
                except ValueError as failure:
                    connection.close()
                    errors[f"malformed response: {failure}"] += 1
                else:
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses[status] += 1
                    if status_matches(status, expect_status):
                        ok += 1
                if on_progress is not None:
                    on_progress()
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    duration = time.perf_counter() - started
    return LoadSummary(
        url=delivery.url,
        event=delivery.event,
        count=count,
        concurrency=concurrency,
        duration_s=duration,
        ok=ok,
        statuses=dict(sorted(statuses.items())),
        errors=dict(errors.most_common()),
        latencies_ms=latencies,
    )


class _Connection:
    """One HTTP/1.1 keep-alive connection that POSTs and reads just the status of each answer.

    Answers are parsed by httptools (llhttp, Node.js's parser), the library ``mhw listen``
    parses requests with: Content-Length, chunked and close-delimited bodies, 1xx interim
    answers, 204 and 304 without a body, ``Connection: close`` and HTTP/1.0 (it reconnects).
    Bodies are counted, never kept, and at most ``READ_LIMIT`` bytes of an answer are read:
    past that the connection is closed and the status stands.
    """

    def __init__(self, url: str, tls: ssl.SSLContext) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = tls if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.head = f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None

    async def post(self, body: bytes, headers: Mapping[str, str]) -> int:
        """The status of the final answer; ValueError when the answer is not HTTP."""
        import httptools

        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
        reader, writer = self.streams
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            self.head + f"{lines}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
        )
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        answer.parser = parser
        read = 0
        while not answer.done:
            data = await reader.read(65536)
            if not data:
                if answer.status and not answer.framed:
                    break  # a body delimited by the end of the connection
                raise asyncio.IncompleteReadError(b"", None)
            try:
                parser.feed_data(data)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as failure:
                if not answer.done:  # else: bytes after a final answer that closes
                    raise ValueError(str(failure) or type(failure).__name__) from None
            read += len(data)
            if read > READ_LIMIT and not answer.done:
                if not answer.status:
                    raise ValueError(f"no end to the response head in {READ_LIMIT} bytes")
                answer.keep_alive = False
                break
        if not answer.keep_alive:
            self.close()
        return answer.status


class _Answer:
    """httptools' callbacks for one answer: the final status and how the connection fares."""

    __slots__ = ("done", "framed", "keep_alive", "parser", "status")

    def __init__(self) -> None:
        self.parser: Any = None
        self.status = 0
        """The final answer's status; 0 until its head has been parsed."""
        self.keep_alive = False
        self.framed = False
        """A Content-Length or chunked body: the end of the connection before it is an error."""
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200 and not self.done:  # 1xx: interim, the final answer follows
            self.status = status
            self.keep_alive = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        if self.status:
            self.done = True
