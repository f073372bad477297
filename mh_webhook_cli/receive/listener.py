"""What ``mhw listen`` does with each request: judge it, store it, answer, then show and forward.

One request's path, in order:

1. verify the signature over the exact bytes and validate the event (pure core);
2. submit it to the capture store and wait until it is *committed*;
3. answer the sender (after ``--respond-delay``, or with the handler's status
   under ``--mirror-status``);
4. off the request path: tell the session (which tells its reporter), forward it to the
   user's handlers (:mod:`mh_webhook_cli.send.forward`), record each forward result in the
   store.

Nothing here decides how things look: a :class:`~mh_webhook_cli.core.request.Received` goes
to a callback, and the command's reporter decides between rich lines and JSON.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from mh_webhook_cli.core.catalog import parse_body, validate_event
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.core.request import (
    UNCHECKED,
    UNSIGNED,
    VERIFIED,
    FindingRecord,
    ForwardResult,
    Received,
    Request,
    matches,
    read_event,
)
from mh_webhook_cli.core.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Reason,
    check,
    repeats_signature_header,
)
from mh_webhook_cli.errors import StoreClosed
from mh_webhook_cli.receive.activity import RequestReceived
from mh_webhook_cli.receive.http import Later, Response
from mh_webhook_cli.send.forward import ForwardRoute, forward, stopped_forward, was_forwarded

if TYPE_CHECKING:
    import httpx

    from mh_webhook_cli.receive.store import GroupCommitter, Receipt


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


class Listener:
    """The request handler of ``mhw listen`` (see the module docstring for the order of work)."""

    def __init__(
        self,
        config: ListenConfig,
        committer: GroupCommitter | None,
        on_received: Callable[[RequestReceived], None],
        on_forwarded: Callable[[Received], None] | None = None,
        client: httpx.AsyncClient | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._committer = committer
        self._on_received = on_received
        self._on_forwarded = on_forwarded or (lambda received: None)
        self._client = client
        self._warn = warn or (lambda message: None)
        """Says one line about a failure that is not the sender's (the store, a forward)."""
        self._routes = config.forwards
        """Emptied by :meth:`stop_forwarding`."""
        self._forwarding: set[asyncio.Task[Any]] = set()
        self._responses: dict[int, Response] = {}
        self._running: asyncio.AbstractEventLoop | None = None
        """The loop requests arrive on, kept: on Python 3.11 asking for it costs a system call."""
        self.counts: Counter[tuple[str, str]] = Counter()
        """Requests by (event type, verification), for the summary on exit."""
        self.closing_refusals = 0
        """Requests answered 503 because the store was closing: their senders retry them."""

    def handle(self, request: Request) -> Response | Later | Awaitable[Response]:
        received = self.judge(request)
        shown = matches(received.event_type, self.config.event_patterns)
        needs_coroutine = self.config.respond_delay > 0 or (
            self.config.mirror_status and self._routes_for(received, shown)
        )
        if needs_coroutine:
            return self._answer_slowly(received, shown)
        if self._committer is None:
            self._accepted(received, shown)
            return self._response(received.answer)
        # The common case, without a task or a future per request: answer once the row is
        # committed, then show it.
        answered = Later()

        def stored(outcome: Receipt | Exception) -> None:
            if isinstance(outcome, Exception):
                answered.answer(self._store_failed(outcome))
                return
            received.id, received.retry_of = outcome
            answered.answer(self._response(received.answer))
            self._accepted(received, shown, answered=True)

        self._committer.store_then(received, stored)
        return answered

    def judge(self, request: Request) -> Received:
        """Verify and validate ``request``, and decide the answer (pure computation)."""
        if request.method == "POST":
            document, findings = _inspect(request.body)
        else:
            document, findings = None, []
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
        event_type, project_id = read_event(document)
        return Received(
            request, time.time(), verification, findings, answer, event_type, project_id, document
        )

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

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._running is None:
            self._running = asyncio.get_running_loop()
        return self._running

    def _accepted(
        self, received: Received, shown: bool, *, answered: bool = False, forwarded: bool = False
    ) -> None:
        """Stored, and answered or about to be: count, show, forward (unless already done).

        The answer is written first, rendering comes after it: once ``answered``, it is shown
        now, else on the loop's next turn.
        """
        self.counts[(received.event_type or "(not an event)", received.verification)] += 1
        routes = [] if forwarded else self._routes_for(received, shown)
        event = RequestReceived(received, shown, bool(routes), self.config.respond_delay)
        if answered:
            self._on_received(event)
        else:
            self._loop().call_soon(self._on_received, event)
        if routes:
            self._forward_in_background(received, routes)

    async def _answer_slowly(self, received: Received, shown: bool) -> Response:
        """``--respond-delay`` or ``--mirror-status``: answers that take a task each."""
        routes = self._routes_for(received, shown)
        mirrored = self.config.mirror_status and bool(routes)
        if mirrored:
            # The handler's status is the answer, so forward first and store what was sent.
            # Until it is stored nothing is acknowledged, and Magic Hour would retry.
            results = await self._forward_all(received, routes, mirrored=True)
            status = results[0]["status"]
            received.answer = status if status is not None else 502
        if self._committer is not None:
            try:
                received.id, received.retry_of = await self._committer.submit(received)
            except Exception as failure:
                return self._store_failed(failure)
            if mirrored:
                await self._record_forwards(received)
        self._accepted(received, shown, forwarded=mirrored)
        if self.config.respond_delay > 0:
            await asyncio.sleep(self.config.respond_delay)
        return self._response(received.answer)

    def _routes_for(self, received: Received, shown: bool) -> list[ForwardRoute]:
        if not self._routes:  # the usual case: no --forward-to
            return []
        if not shown or received.answer in (404, 405):
            return []
        if was_forwarded(received.request):
            return []  # forwarded by a listener already: forwarding it again could loop
        return [route for route in self._routes if route.wants(received.event_type)]

    async def _forward_all(
        self, received: Received, routes: Sequence[ForwardRoute], *, mirrored: bool = False
    ) -> list[ForwardResult]:
        client = self._client
        assert client is not None, "forwarding needs an httpx client"
        config = self.config
        try:
            results = await asyncio.gather(
                *(
                    forward(
                        client,
                        route.url,
                        received.request,
                        extra_headers=config.forward_headers,
                        timeout=config.forward_timeout,
                    )
                    for route in routes
                )
            )
        except asyncio.CancelledError:
            if not mirrored:  # stopped (see stop_forwarding): still shown, with why
                received.forwards = [stopped_forward(route.url) for route in routes]
                self._on_forwarded(received)
            raise
        received.forwards = list(results)
        if not mirrored:  # a mirrored request is stored and shown with its forwards, later
            try:
                await self._record_forwards(received)
            finally:
                self._on_forwarded(received)
        return list(results)

    async def _record_forwards(self, received: Received) -> None:
        """Store the forward results through the committer's writer, off the loop.

        Awaited before they are shown, so that what is shown can be found in the store.
        """
        if self._committer is None or received.id is None:
            return
        try:
            await self._committer.record_forwards(received.id, received.forwards)
        except Exception as failure:  # the forwarding is done: only its record is missing
            self._warn(f"could not store the forward results of request #{received.id}: {failure}")

    def _store_failed(self, failure: BaseException) -> Response:
        """Answer 500 (503 when stopping), and say so: the sender retries, nothing is lost."""
        if isinstance(failure, StoreClosed):
            self.closing_refusals += 1  # counted, not shown one by one: see receive.session
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

    def _forward_in_background(self, received: Received, routes: Sequence[ForwardRoute]) -> None:
        task = asyncio.ensure_future(self._forward_all(received, routes))
        self._forwarding.add(task)
        task.add_done_callback(partial(self._forwarded, received))

    def _forwarded(self, received: Received, task: asyncio.Task[Any]) -> None:
        """A forward task ended: its failure is one line, never an unretrieved exception."""
        self._forwarding.discard(task)
        if not task.cancelled() and (failure := task.exception()) is not None:
            self._warn(f"could not forward request #{received.id}: {failure!r}")

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


def _inspect(body: bytes) -> tuple[Any, list[FindingRecord]]:
    """The parsed event (None when the body is not JSON) and its schema findings, in the form
    they are stored and shown."""
    document, findings = parse_body(body)
    return document, [
        {"path": f.path, "code": f.code, "message": f.message}
        for f in findings or validate_event(document)
    ]
