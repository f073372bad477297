"""Send signed webhook requests to a handler, as Magic Hour does: the I/O edge of ``mhw send``.

The body is serialized once, compactly (:func:`mh_webhook_cli.core.json_text.dumps`), and those
exact bytes are both signed and sent, so a handler that verifies the raw body sees precisely what
was signed. Every network failure (refused connection, DNS, TLS, timeout) becomes a
:class:`SendResult` with an ``error`` line rather than an exception, so a run over many requests
reports each one and never a traceback. Every request is bounded (see
:mod:`mh_webhook_cli.send.client`): ``timeout`` is the time for the whole exchange, and only
:data:`RESPONSE_KEEP` bytes of an answer are kept. Retries follow Magic Hour's schedule
(:mod:`mh_webhook_cli.send.retry`); the load test is :mod:`mh_webhook_cli.send.load`.

httpx is imported inside the functions that use it: this module is imported by other
commands for its types, and they must not pay for it.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mh_webhook_cli.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from mh_webhook_cli.errors import DeadlineExceeded, InvalidValue
from mh_webhook_cli.send.client import (
    USER_AGENT,
    BlockingClient,
    describe_failure,
    request,
)
from mh_webhook_cli.send.retry import Backoff

if TYPE_CHECKING:
    import httpx

SEND_RETRY_SECONDS = 60.0
"""How long ``mhw send --retry`` keeps retrying by default: Magic Hour's schedule, but a
developer at a terminal will not wait Magic Hour's 24 hours."""
SEND_RETRIES = Backoff(limit=SEND_RETRY_SECONDS)
RESPONSE_KEEP = 64 * 1024
"""Bytes of an answer ``mhw send`` keeps: all that ``--format json`` shows, and then some."""


def serialize(event: Any) -> bytes:
    """The bytes of an event as Magic Hour puts it on the wire: mhw's one compact JSON."""
    from mh_webhook_cli.core.json_text import dumps

    return dumps(event).encode()


def accepted(status: int, expect_status: int | str | None = None) -> bool:
    """A 2xx, or ``expect_status`` (401, or a class: "4xx") when the handler should refuse."""
    if expect_status is None:
        return 200 <= status < 300
    if isinstance(expect_status, str) and expect_status.endswith("xx"):
        return str(status)[0] == expect_status[0]
    return str(status) == str(expect_status)


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` as a pair; InvalidValue (one line) when it is not a header."""
    name, separator, value = text.partition(":")
    name = name.strip()
    if not separator or not name or any(c.isspace() for c in name):
        raise InvalidValue(f"invalid header {text!r}: expected 'Name: value'")
    if any(ord(c) < 32 and c != "\t" for c in value):
        raise InvalidValue(f"invalid header {text!r}: control characters in the value")
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

    def headers(self, signer: Signer, now: float | None = None) -> list[tuple[str, str]]:
        """What is sent, in order: JSON's Content-Type and mhw's User-Agent, the signature,
        then the extra headers. An extra header replaces a default or signature header of
        the same name (in any case), and repeats of one are all sent: a replayed capture
        goes out as it came in."""
        given = {name.lower() for name, _ in self.extra_headers}
        ours = [("Content-Type", "application/json"), ("User-Agent", USER_AGENT)]
        ours += signer.headers(self.body, now).items()
        return [*((n, v) for n, v in ours if n.lower() not in given), *self.extra_headers]


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
        """Whether the handler :func:`accepted` the delivery."""
        return self.status is not None and accepted(self.status, expect_status)


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
            raise InvalidValue(f"cannot load --cacert {cacert}: {reason}") from None
    return context


def make_client(tls: ssl.SSLContext) -> BlockingClient:
    """A client for single deliveries (redirects are never followed, as Magic Hour's aren't)."""
    return BlockingClient(verify=tls)


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
    sent = {name.lower(): value for name, value in headers}
    timestamp = sent.get(TIMESTAMP_HEADER)
    result = SendResult(
        url=delivery.url,
        event=delivery.event,
        status=None,
        latency_ms=0.0,
        signature=sent.get(SIGNATURE_HEADER),
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
    schedule: Backoff = SEND_RETRIES,
    expect_status: int | str | None = None,
    on_retry: Callable[[SendResult, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SendResult:
    """Send until the handler accepts, waiting between attempts as ``schedule`` says.

    Every attempt carries the same body bytes (it is the same event, so a handler must
    deduplicate by ``payload.id``, never by signature), re-signed with a fresh timestamp:
    a retry is a new delivery, and reusing the first timestamp would make late retries
    look stale to a handler that checks the age. ``on_retry`` hears about each failed
    attempt with the wait before the next one; ``sleep`` and ``clock`` are there for tests.
    """
    first = clock()
    attempt = 1
    while True:
        result = replace(send_once(client, delivery, signer, timeout), attempts=attempt)
        wait = None if result.ok(expect_status) else schedule.wait_after(attempt, clock() - first)
        if wait is None:
            return result
        if on_retry is not None:
            on_retry(result, wait)
        sleep(wait)
        attempt += 1
