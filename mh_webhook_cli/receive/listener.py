"""What ``mhw listen`` does with each request: judge it, store it, answer, then show and forward.

One request's path, in order:

1. verify the signature over the exact bytes and validate the event (pure core);
2. submit it to the capture store and wait until it is *committed*;
3. answer the sender (after ``--respond-delay``, or with the handler's status
   under ``--mirror-status``);
4. off the request path: hand it to the presenter, forward it to the user's
   handlers, record each forward result in the store.

Nothing here decides how things look: a :class:`Delivery` goes to a callback,
and the command decides between rich lines and JSON.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mh_webhook_cli.core.catalog import Finding, parse_body, validate_event
from mh_webhook_cli.core.hosts import is_local, same_host
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.core.request import HOP_BY_HOP_HEADERS, Request
from mh_webhook_cli.core.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Reason,
    check,
    repeats_signature_header,
)
from mh_webhook_cli.errors import DeadlineExceeded, StoreClosed, UsageError
from mh_webhook_cli.receive.http import Response
from mh_webhook_cli.receive.store import ForwardResult, NewRequest
from mh_webhook_cli.send.client import FORWARDED_HEADER
from mh_webhook_cli.send.client import request as bounded_request

if TYPE_CHECKING:
    import httpx

    from mh_webhook_cli.receive.store import GroupCommitter, Receipt

VERIFIED = Reason.OK.value
"""The verification of a correctly signed request (a plain string: cheaper than the enum)."""
UNSIGNED = "unsigned"
UNCHECKED = "unchecked"


@dataclass(frozen=True)
class ForwardRoute:
    """Where to forward: every event, or those whose type matches ``pattern`` (``video.*``)."""

    url: str
    pattern: str | None = None

    @classmethod
    def parse(cls, text: str) -> ForwardRoute:
        """``URL`` or ``PATTERN=URL``, as given to ``--forward-to``."""
        pattern, equals, url = text.partition("=")
        if equals and "://" not in pattern:
            return cls(url.strip(), pattern.strip())
        return cls(text.strip())

    def wants(self, event_type: str | None) -> bool:
        return self.pattern is None or matches(event_type, (self.pattern,))


def refuse_forwarding_loop(routes: Sequence[ForwardRoute], host: str, port: int) -> None:
    """UsageError when a route leads straight back to a listener bound to ``host``:``port``.

    What can be told without a DNS lookup (see :mod:`mh_webhook_cli.core.hosts`): the same port,
    on the bound address itself however spelled or, for a listener on a loopback or
    any-address, on ``localhost``, a loopback or an any-address. Every other way back (a
    name of this machine, a tunnel, a second listener forwarding here) is cut by
    :data:`FORWARDED_HEADER` after one hop.
    """
    for route in routes:
        parts = urlsplit(route.url)
        target_port = parts.port or (443 if parts.scheme == "https" else 80)
        target = parts.hostname or ""
        if target_port == port and (
            same_host(target, host) or (is_local(target) and is_local(host))
        ):
            raise UsageError(
                f"--forward-to {route.url} is this listener itself: every request would be "
                "forwarded to itself again and again; forward to your handler's port"
            )


def matches(event_type: str | None, patterns: Sequence[str]) -> bool:
    """Whether an event type matches any of ``patterns`` (``video.*``); no patterns match all."""
    return not patterns or any(fnmatch.fnmatchcase(event_type or "", p) for p in patterns)


@dataclass(frozen=True)
class ListenConfig:
    secrets: tuple[str, ...] = ()
    tolerance: int = DEFAULT_TOLERANCE_SECONDS
    path: str | None = None
    """Accept only this path (404 elsewhere); None accepts any."""
    respond_status: int = 200
    respond_body: bytes = b'{"received":true}'
    respond_delay: float = 0.0
    reject_invalid: bool = False
    """Answer 401 to a bad or missing signature, as a production handler should."""
    mirror_status: bool = False
    """Answer with the status of the first forward route for the event's type, so that
    Magic Hour's retries behave as in production."""
    event_patterns: tuple[str, ...] = ()
    """Show and forward only these event types (globs); everything is still stored."""
    forwards: tuple[ForwardRoute, ...] = ()
    forward_headers: tuple[tuple[str, str], ...] = ()
    forward_timeout: float = MAGIC_HOUR_TIMEOUT_SECONDS


@dataclass
class Delivery:
    """A received request and what the listener made of it."""

    request: Request
    received_at: float
    document: Any
    """The body parsed as JSON; None when it is not JSON."""
    verification: str
    findings: list[Finding]
    answer: int
    id: int | None = None
    retry_of: int | None = None
    """The stored delivery this one repeats (same type, project and body): a retry."""
    shown: bool = True
    """Whether ``--events`` lets it be shown and forwarded (it is stored regardless)."""
    forwarding: bool = False
    """Forward results will follow (see ``Listener``'s ``on_forwarded``)."""
    forwards: list[ForwardResult] = field(default_factory=list)
    event_type: str | None = field(init=False)
    project_id: str | None = field(init=False)
    project_status: str | None = field(init=False)

    def __post_init__(self) -> None:
        # Read once: the pipeline, the display and the store each ask for them.
        document = self.document if isinstance(self.document, dict) else {}
        payload = document.get("payload")
        if not isinstance(payload, dict):
            payload = {}
        self.event_type = _text(document.get("type"))
        self.project_id = _text(payload.get("id"))
        self.project_status = _text(payload.get("status"))

    @property
    def valid(self) -> bool:
        return self.verification == VERIFIED and not self.findings


def _text(value: Any) -> str | None:
    """``value`` if it is a string: events come from anyone, so no assumptions."""
    return value if isinstance(value, str) else None


Notify = Callable[[Delivery], None]


class Listener:
    """The request handler of ``mhw listen`` (see the module docstring for the order of work)."""

    def __init__(
        self,
        config: ListenConfig,
        committer: GroupCommitter | None,
        on_delivery: Notify,
        on_forwarded: Notify | None = None,
        client: httpx.AsyncClient | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._committer = committer
        self._on_delivery = on_delivery
        self._on_forwarded = on_forwarded or (lambda delivery: None)
        self._client = client
        self._warn = warn or (lambda message: None)
        """Says one line about a failure that is not the sender's (the store, a forward)."""
        self._routes = config.forwards
        """Emptied by :meth:`stop_forwarding`."""
        self._forwarding: set[asyncio.Task[Any]] = set()
        self._responses: dict[int, Response] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        """Deliveries by (event type, verification), for the summary on exit."""
        self.closing_refusals = 0
        """Requests answered 503 because the store was closing: their senders retry them."""

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        delivery = self.judge(request)
        needs_coroutine = self.config.respond_delay > 0 or (
            self.config.mirror_status and self._routes_for(delivery)
        )
        if needs_coroutine:
            return self._answer_slowly(delivery)
        if self._committer is None:
            self._accepted(delivery)
            return self._response(delivery.answer)
        # The common case without a task per request: answer when the commit future resolves.
        committed = self._committer.submit(self._record(delivery))
        answered: asyncio.Future[Response] = committed.get_loop().create_future()

        def after_commit(done: asyncio.Future[Receipt]) -> None:
            failure = done.exception()
            if failure is not None:
                answered.set_result(self._store_failed(failure))
                return
            delivery.id, delivery.retry_of = done.result()
            answered.set_result(self._response(delivery.answer))
            self._accepted(delivery, done.get_loop())

        committed.add_done_callback(after_commit)
        return answered

    def judge(self, request: Request) -> Delivery:
        """Verify and validate ``request``, and decide the answer (pure computation)."""
        document, findings = _inspect(request.body) if request.method == "POST" else (None, [])
        verification = self._verification(request)
        config = self.config
        if request.method != "POST":
            answer = 405
        elif config.path is not None and request.path != config.path:
            answer = 404
        elif config.reject_invalid and verification != VERIFIED:
            answer = 401
        else:
            answer = config.respond_status
        delivery = Delivery(request, time.time(), document, verification, findings, answer)
        delivery.shown = matches(delivery.event_type, config.event_patterns)
        return delivery

    def _verification(self, request: Request) -> str:
        by_name = request.by_name
        signature = by_name.get(SIGNATURE_HEADER)
        timestamp = by_name.get(TIMESTAMP_HEADER)
        if signature is None and timestamp is None:
            return UNSIGNED
        # by_name kept the last of a repeated header; which copy counts is ambiguous, whatever
        # the secret. Only a request with some repeated name pays for the look.
        if len(by_name) < len(request.headers) and repeats_signature_header(request.headers):
            return Reason.AMBIGUOUS_HEADERS.value
        if not self.config.secrets:
            return UNCHECKED
        # check(), not verify(): forged floods must stay cheap; `mhw verify --event` explains.
        reason, _ = check(
            request.body, signature, timestamp, self.config.secrets, tolerance=self.config.tolerance
        )
        return reason.value

    def _record(self, delivery: Delivery) -> NewRequest:
        request = delivery.request
        return NewRequest(
            received_at=delivery.received_at,
            method=request.method,
            path=request.target,
            headers=request.headers,
            body=request.body,
            client=request.client,
            event_type=delivery.event_type,
            project_id=delivery.project_id,
            verification=delivery.verification,
            findings=[
                {"path": f.path, "code": f.code, "message": f.message} for f in delivery.findings
            ],
            response_status=delivery.answer,
        )

    def _accepted(
        self,
        delivery: Delivery,
        loop: asyncio.AbstractEventLoop | None = None,
        forwarded: bool = False,
    ) -> None:
        """Stored and about to be answered: count, show, forward (unless already done).

        ``loop`` saves a system call when the caller has it (the commit future's loop).
        """
        self.counts[(delivery.event_type or "(not an event)", delivery.verification)] += 1
        routes = [] if forwarded else self._routes_for(delivery)
        delivery.forwarding = bool(routes)
        # Scheduled, not called: the answer is written first, rendering comes after it.
        (loop or asyncio.get_running_loop()).call_soon(self._on_delivery, delivery)
        if routes:
            self._forward_in_background(delivery, routes)

    async def _answer_slowly(self, delivery: Delivery) -> Response:
        """``--respond-delay`` or ``--mirror-status``: answers that take a task each."""
        routes = self._routes_for(delivery)
        mirrored = self.config.mirror_status and bool(routes)
        if mirrored:
            # The handler's status is the answer, so forward first and store what was sent.
            # Until it is stored nothing is acknowledged, and Magic Hour would retry.
            results = await self._forward_all(delivery, routes, mirrored=True)
            status = results[0]["status"]
            delivery.answer = status if status is not None else 502
        if self._committer is not None:
            try:
                delivery.id, delivery.retry_of = await self._committer.submit(
                    self._record(delivery)
                )
            except Exception as failure:
                return self._store_failed(failure)
            if mirrored:
                await self._record_forwards(delivery)
        self._accepted(delivery, forwarded=mirrored)
        if self.config.respond_delay > 0:
            await asyncio.sleep(self.config.respond_delay)
        return self._response(delivery.answer)

    def _routes_for(self, delivery: Delivery) -> list[ForwardRoute]:
        if not self._routes:  # the usual case: no --forward-to
            return []
        if not delivery.shown or delivery.answer in (404, 405):
            return []
        if FORWARDED_HEADER in delivery.request.by_name:
            return []  # forwarded by a listener already: forwarding it again could loop
        return [route for route in self._routes if route.wants(delivery.event_type)]

    async def _forward_all(
        self, delivery: Delivery, routes: Sequence[ForwardRoute], *, mirrored: bool = False
    ) -> list[ForwardResult]:
        client = self._client
        assert client is not None, "forwarding needs an httpx client"
        try:
            results = await asyncio.gather(
                *(forward(client, route.url, delivery.request, self.config) for route in routes)
            )
        except asyncio.CancelledError:
            if not mirrored:  # stopped (see stop_forwarding): still shown, with why
                delivery.forwards = [_stopped(route.url) for route in routes]
                self._on_forwarded(delivery)
            raise
        delivery.forwards = list(results)
        if not mirrored:  # a mirrored delivery is stored and shown with its forwards, later
            try:
                await self._record_forwards(delivery)
            finally:
                self._on_forwarded(delivery)
        return list(results)

    async def _record_forwards(self, delivery: Delivery) -> None:
        """Store the forward results through the committer's writer, off the loop.

        Awaited before they are shown, so that what is shown can be found in the store.
        """
        if self._committer is None or delivery.id is None:
            return
        try:
            await self._committer.record_forwards(delivery.id, delivery.forwards)
        except Exception as failure:  # the forwarding is done: only its record is missing
            self._warn(f"could not store the forward results of request #{delivery.id}: {failure}")

    def _store_failed(self, failure: BaseException) -> Response:
        """Answer 500 (503 when stopping), and say so: the sender retries, nothing is lost."""
        if isinstance(failure, StoreClosed):
            self.closing_refusals += 1  # counted, not shown one by one: see listen_session
            return _STOPPING
        self._warn(f"answered 500, could not store a request: {failure}")
        return Response(500, b"mhw could not store the request\n")

    def _response(self, status: int) -> Response:
        # One object per status: the server caches its bytes on the wire by response.
        response = self._responses.get(status)
        if response is None:
            body = self.config.respond_body if status < 300 else _ERROR_BODIES.get(status, b"")
            response = Response(status, body, (("content-type", "application/json"),))
            self._responses[status] = response
        return response

    def _forward_in_background(self, delivery: Delivery, routes: Sequence[ForwardRoute]) -> None:
        task = asyncio.ensure_future(self._forward_all(delivery, routes))
        self._forwarding.add(task)
        task.add_done_callback(partial(self._forwarded, delivery))

    def _forwarded(self, delivery: Delivery, task: asyncio.Task[Any]) -> None:
        """A forward task ended: its failure is one line, never an unretrieved exception."""
        self._forwarding.discard(task)
        if not task.cancelled() and (failure := task.exception()) is not None:
            self._warn(f"could not forward request #{delivery.id}: {failure!r}")

    @property
    def forwards_under_way(self) -> int:
        return len(self._forwarding)

    async def drain(self, timeout: float) -> None:
        """Wait (a bounded time) for forwards still under way, before shutting down."""
        if self._forwarding:
            await asyncio.wait(set(self._forwarding), timeout=timeout)

    async def stop_forwarding(self) -> int:
        """Start no more forwards and stop those under way (at shutdown, once drained, before
        the forwarding client closes); how many were stopped. Each is still shown."""
        self._routes = ()
        under_way = list(self._forwarding)
        for task in under_way:
            task.cancel()
        await asyncio.gather(*under_way, return_exceptions=True)
        return len(under_way)


_STOPPING = Response(503, b"mhw is stopping; retry later\n", (("retry-after", "5"),))

_ERROR_BODIES = {
    401: b'{"error":"invalid signature"}',
    404: b'{"error":"not the webhook path"}',
    405: b'{"error":"webhooks are POST requests"}',
}


FORWARD_BODY_CHARACTERS = 2000
"""Characters of a handler's answer that are stored and shown; only these are ever kept."""


async def forward(
    client: httpx.AsyncClient, url: str, request: Request, config: ListenConfig
) -> ForwardResult:
    """Send the exact bytes and headers received (plus ``-H`` extras) to the user's handler.

    ``--forward-timeout`` bounds the whole exchange, and only the stored start of the answer
    is kept (see :func:`mh_webhook_cli.send.client.request`): a handler that answers slowly
    or endlessly costs this listener neither time past the timeout nor memory.
    """
    import httpx

    headers = [
        (name, value) for name, value in request.headers if name.lower() not in HOP_BY_HOP_HEADERS
    ]
    headers += [*config.forward_headers, (FORWARDED_HEADER, "1")]
    try:
        answer = await bounded_request(
            client,
            "POST",
            url,
            content=request.body,
            headers=headers,
            deadline=config.forward_timeout,
            keep=FORWARD_BODY_CHARACTERS * 4,  # UTF-8 needs at most 4 bytes a character
        )
    except DeadlineExceeded as failure:
        return ForwardResult(
            target=url,
            status=None,
            latency_ms=None,
            error=f"no complete answer within {failure.seconds:g} s ({failure.phase})",
            body=None,
        )
    except httpx.HTTPError as failure:
        return ForwardResult(
            target=url, status=None, latency_ms=None, error=_describe(failure), body=None
        )
    return ForwardResult(
        target=url,
        status=answer.status,
        latency_ms=round(answer.latency_ms, 1),
        error=None,
        body=answer.body.decode("utf-8", errors="replace")[:FORWARD_BODY_CHARACTERS],
    )


def _stopped(url: str) -> ForwardResult:
    """What a forward that mhw stopped before the handler answered came to."""
    return ForwardResult(
        target=url, status=None, latency_ms=None, error="stopped: mhw was shutting down", body=None
    )


def _describe(failure: Exception) -> str:
    text = str(failure) or type(failure).__name__
    if "refused" in text.lower() or "connect" in type(failure).__name__.lower():
        return f"cannot connect ({text})"
    return text


def _inspect(body: bytes) -> tuple[Any, list[Finding]]:
    """The parsed event (None when the body is not JSON) and its schema findings."""
    document, findings = parse_body(body)
    return document, findings or validate_event(document)
