"""Grade a webhook handler against Magic Hour's rules: the battery behind ``mhw check``.

Each check sends one kind of delivery (genuine, forged, stale, unsigned, not JSON, ...) and
grades the answer the way Magic Hour and an attacker would see it: a 2xx to a forgery means
the handler does not verify signatures; a 5xx is a crash that Magic Hour retries for 24
hours; an answer after 10 s is a failed delivery. Check ids are stable: they are the names
in ``--format json`` and JUnit, and in ``--only`` / ``--skip``.

The checks run one after another, and only the burst sends concurrently: a handler that
cannot take concurrent deliveries then fails ``burst-within-10s`` alone, not whichever
check happened to overlap another. Every request is bounded (:func:`~.client.request`):
its deadline is Magic Hour's limit plus :data:`GRACE_SECONDS`, so a slow answer is still
graded (and reported as slow); once a request gets no answer at all, nothing more is sent
(a hanging handler would otherwise cost a deadline per request) and the checks left say so.

No I/O happens outside :func:`check_handler`; results are plain data, rendered by
:mod:`mh_webhook_cli.report.check`.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from mh_webhook_cli.core.catalog import EVENT_TYPES
from mh_webhook_cli.core.fixtures import build_fixture
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.core.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from mh_webhook_cli.errors import DeadlineExceeded, InvalidValue
from mh_webhook_cli.send.client import USER_AGENT, describe_failure, request
from mh_webhook_cli.send.delivery import serialize

if TYPE_CHECKING:
    import httpx

GRACE_SECONDS = 2.0
"""How long past the time limit a request may still be answered (and graded as slow)."""
CLOCK_SKEW_SECONDS = 600
"""How far the stale and future timestamps lie from now: twice Magic Hour's 5-minute advice."""
BURST_DEFAULT = 20
BURST_MAX = 100
"""httpx's connection pool holds 100: more would queue in mhw, not in the handler."""
BODY_KEEP = 512
"""Bytes of each answer kept: enough for an error message, shown as an excerpt."""
UNKNOWN_EVENT_TYPE = "video.queued"
"""Not one of the nine documented types, but one Magic Hour could plausibly add."""
NOT_JSON = b'{"type": "video.completed", "payload": {"id": "cut off'
"""A delivery cut off mid-body: what a broken proxy or a truncated retry looks like."""
ATTACKER_URL = "https://attacker.example/output.mp4"


class CheckOutcome(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    ADVICE = "advice"
    """Not a failure (exit 0), but the answer is not what Magic Hour's rules recommend."""
    SKIPPED = "skipped"
    """Not run: no webhook secret, or an earlier request got no answer at all."""


@dataclass(frozen=True)
class HandlerCheck:
    """One check's definition: its stable id and what it sends, in words."""

    id: str
    sends: str
    needs_secret: bool


CHECKS: tuple[HandlerCheck, ...] = (
    HandlerCheck("signed-events-accepted", "each of the nine event types, signed, fresh", True),
    HandlerCheck(
        "forged-signature-rejected", "a fresh timestamp, a signature over other bytes", False
    ),
    HandlerCheck("wrong-secret-rejected", "an event signed with another secret", False),
    HandlerCheck(
        "tampered-body-rejected",
        "a genuine signature replayed on a body with one field changed",
        True,
    ),
    HandlerCheck("stale-timestamp-rejected", "a valid signature, timestamp 10 min old", True),
    HandlerCheck("future-timestamp-rejected", "a valid signature, timestamp 10 min ahead", True),
    HandlerCheck("unsigned-rejected", "an event without signature headers", False),
    HandlerCheck("retry-accepted", "the same event twice, re-signed as Magic Hour retries", True),
    HandlerCheck("unknown-fields-accepted", "an event with extra, undocumented fields", True),
    HandlerCheck("unknown-event-type-accepted", f"a signed {UNKNOWN_EVENT_TYPE} event", True),
    HandlerCheck("non-json-not-5xx", "a signed body that is not JSON", True),
    HandlerCheck("answers-within-10s", "(the answers to the checks above)", False),
    HandlerCheck("burst-within-10s", "concurrent signed deliveries", True),
)
CHECK_IDS: tuple[str, ...] = tuple(check.id for check in CHECKS)


@dataclass(frozen=True)
class Exchange:
    """One request the battery sent, and its answer (or why there was none)."""

    label: str
    """What was sent, in a few words (``video.completed``, ``video.completed, retried``)."""
    status: int | None
    latency_ms: float
    body: bytes = b""
    """The first :data:`BODY_KEEP` bytes of the answer's body."""
    location: str | None = None
    """Where a 3xx answer points."""
    error: str | None = None
    """Why there is no answer (refused, timed out, not sent)."""


@dataclass(frozen=True)
class CheckResult:
    """A check's verdict, with the exchange that decided it and the fix in one sentence."""

    id: str
    outcome: CheckOutcome
    sent: str
    detail: str
    fix: str | None = None
    answer: Exchange | None = None
    """The exchange that decided the verdict: the first bad one, else the first one."""
    exchanges: tuple[Exchange, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> bool | None:
        """True or False; None when the check did not run."""
        return None if self.outcome is CheckOutcome.SKIPPED else self.outcome is CheckOutcome.PASSED

    @property
    def severity(self) -> str:
        """``advice`` when the verdict is only advice, else ``required``."""
        return "advice" if self.outcome is CheckOutcome.ADVICE else "required"


@dataclass(frozen=True)
class CheckReport:
    url: str
    results: tuple[CheckResult, ...]
    duration_s: float

    @property
    def passed(self) -> bool:
        """No required check failed (advice and skipped checks do not count)."""
        return all(result.outcome is not CheckOutcome.FAILED for result in self.results)

    def result(self, check_id: str) -> CheckResult:
        return next(result for result in self.results if result.id == check_id)

    @property
    def failed_ids(self) -> list[str]:
        return [result.id for result in self.results if result.outcome is CheckOutcome.FAILED]


def select_checks(
    only: Iterable[str] | None = None, skip: Iterable[str] | None = None
) -> tuple[HandlerCheck, ...]:
    """The checks to run, in the battery's order; InvalidValue (one line) for an unknown id."""
    only_ids, skip_ids = set(only or ()), set(skip or ())
    unknown = sorted((only_ids | skip_ids) - set(CHECK_IDS))
    if unknown:
        raise InvalidValue(f"unknown check {unknown[0]!r}; the checks are {', '.join(CHECK_IDS)}")
    chosen = tuple(
        check
        for check in CHECKS
        if (not only_ids or check.id in only_ids) and check.id not in skip_ids
    )
    if not chosen:
        raise InvalidValue("no check left to run")
    return chosen


def run_checks(
    url: str,
    secret: str | None = None,
    *,
    only: Iterable[str] | None = None,
    skip: Iterable[str] | None = None,
    burst: int = BURST_DEFAULT,
    headers: Sequence[tuple[str, str]] = (),
    time_limit: float = MAGIC_HOUR_TIMEOUT_SECONDS,
    on_result: Callable[[CheckResult], object] | None = None,
) -> CheckReport:
    """Run the battery against the handler at ``url`` and return every check's verdict.

    ``secret`` is the handler's webhook secret; without it, the checks that need a genuine
    signature are skipped and the rest run. ``only`` and ``skip`` take check ids
    (:data:`CHECK_IDS`; ValueError for an unknown one). ``burst`` deliveries go at once in
    ``burst-within-10s``. ``headers`` go with every request. ``time_limit`` is the time an
    answer may take (Magic Hour's 10 s). ``on_result`` hears each verdict as it is reached.

    Synchronous; it may be called from inside a running event loop (a pytest-asyncio test),
    in which case it runs on a thread of its own. :func:`check_handler` is the coroutine.
    """
    work = check_handler(
        url,
        secret,
        only=only,
        skip=skip,
        burst=burst,
        headers=headers,
        time_limit=time_limit,
        on_result=on_result,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


async def check_handler(
    url: str,
    secret: str | None = None,
    *,
    only: Iterable[str] | None = None,
    skip: Iterable[str] | None = None,
    burst: int = BURST_DEFAULT,
    headers: Sequence[tuple[str, str]] = (),
    time_limit: float = MAGIC_HOUR_TIMEOUT_SECONDS,
    on_result: Callable[[CheckResult], object] | None = None,
) -> CheckReport:
    """:func:`run_checks` as a coroutine."""
    import httpx

    checks = select_checks(only, skip)
    if not 1 <= burst <= BURST_MAX:
        raise InvalidValue(f"the burst must be 1 to {BURST_MAX} deliveries")
    if time_limit <= 0:
        raise InvalidValue("the time limit must be positive")
    started = time.perf_counter()
    results: list[CheckResult] = []
    # A new connection for each delivery, as Magic Hour's arrive: a handler that closes a
    # connection after a crash must not fail the next check on a reused one.
    fresh = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
    async with httpx.AsyncClient(transport=fresh) as client:
        battery = _Battery(client, url, secret, tuple(headers), time_limit, burst)
        for check in checks:
            result = await battery.run(check)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return CheckReport(url, tuple(results), time.perf_counter() - started)


def build_event(event_type: str, *, now: datetime) -> dict[str, Any]:
    """A realistic event of ``event_type`` at ``now``: one of the nine, or for another type
    (``video.queued``) the payload of its resource's ``started`` event; ValueError when the
    resource is not video, image or audio."""
    if event_type in EVENT_TYPES:
        return build_fixture(event_type, now=now)
    resource = event_type.partition(".")[0]
    if f"{resource}.started" not in EVENT_TYPES:
        raise InvalidValue(
            f"no realistic payload for {event_type!r}: not a video, image or audio event"
        )
    return {**build_fixture(f"{resource}.started", now=now), "type": event_type}


Sign = Callable[[bytes], dict[str, str]]
"""Signature headers for a body (empty for none)."""


class _Battery:
    """The state one run shares between checks: the client, the clock, the genuine delivery."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secret: str | None,
        headers: tuple[tuple[str, str], ...],
        time_limit: float,
        burst: int,
    ) -> None:
        self.client = client
        self.url = url
        self.secret = secret
        self.headers = headers
        self.time_limit = time_limit
        self.burst = burst
        self.deadline = time_limit + GRACE_SECONDS
        self.now = datetime.now(timezone.utc)
        self.halted: str | None = None
        """Why nothing more is sent: an earlier request got no answer in time."""
        self.sent: list[Exchange] = []
        """Every exchange but the burst's, for ``answers-within-10s``."""
        # The genuine video.completed of signed-events-accepted, signed once: the tampered
        # check replays exactly this signature, as an attacker who captured it would.
        self.genuine_timestamp = int(time.time())
        self.genuine = serialize(self.event("video.completed"))

    def genuine_signature(self, _: bytes) -> dict[str, str]:
        """The headers Magic Hour signed :attr:`genuine` with (whatever body they go with)."""
        assert self.secret is not None, "a check that signs needs the secret"
        timestamp = self.genuine_timestamp
        signature = sign(self.secret, timestamp, self.genuine)
        return {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: str(timestamp)}

    def event(self, event_type: str, offset_ms: int = 0) -> dict[str, Any]:
        """A realistic event; ``offset_ms`` gives it a project id of its own."""
        return build_event(event_type, now=self.now + timedelta(milliseconds=offset_ms))

    def signed(self, offset: int = 0, secret: str | None = None) -> Sign:
        """Sign with ``secret`` (the handler's by default), at now + ``offset`` seconds."""
        key = secret or self.secret
        assert key is not None, "a check that signs needs the secret"

        def headers(body: bytes) -> dict[str, str]:
            timestamp = int(time.time()) + offset
            return {SIGNATURE_HEADER: sign(key, timestamp, body), TIMESTAMP_HEADER: str(timestamp)}

        return headers

    async def send(
        self, label: str, body: bytes, signature: Sign, *, record: bool = True
    ) -> Exchange:
        """POST one delivery; never raises: a failure is an :class:`Exchange` with an error."""
        import httpx

        if self.halted is not None:
            return Exchange(label, None, 0.0, error=self.halted)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers.update(signature(body))
        headers.update(self.headers)
        started = time.perf_counter()
        try:
            answer = await request(
                self.client,
                "POST",
                self.url,
                content=body,
                headers=headers,
                deadline=self.deadline,
                keep=BODY_KEEP,
            )
        except (httpx.HTTPError, DeadlineExceeded) as failure:
            error = describe_failure(failure, self.deadline, tls_fix="check the URL's certificate")
            exchange = Exchange(label, None, (time.perf_counter() - started) * 1000, error=error)
            if isinstance(failure, (DeadlineExceeded, httpx.TimeoutException)):
                self.halted = (
                    f"not sent: an earlier request got no answer within {self.deadline:g} s"
                )
        else:
            exchange = Exchange(
                label,
                answer.status,
                answer.latency_ms,
                answer.body,
                answer.header("location") if 300 <= answer.status < 400 else None,
            )
        if record:
            self.sent.append(exchange)
        return exchange

    async def run(self, check: HandlerCheck) -> CheckResult:
        if check.needs_secret and self.secret is None:
            return CheckResult(
                check.id, CheckOutcome.SKIPPED, check.sends, "skipped: needs the webhook secret"
            )
        grade = _GRADERS[check.id]
        return await grade(self, check)


Grader = Callable[[_Battery, HandlerCheck], Awaitable[CheckResult]]
_GRADERS: dict[str, Grader] = {}


def _grader(check_id: str) -> Callable[[Grader], Grader]:
    def register(function: Grader) -> Grader:
        _GRADERS[check_id] = function
        return function

    return register


# What an answer means. Each check states what it expected; these say what came back.


def _is_2xx(exchange: Exchange) -> bool:
    return exchange.status is not None and 200 <= exchange.status < 300


def _is_4xx(exchange: Exchange) -> bool:
    return exchange.status is not None and 400 <= exchange.status < 500


CRASH_FIX = (
    "Find the exception in the handler's log and answer 4xx for a request it refuses: "
    "Magic Hour retries every 5xx for 24 hours."
)
REDIRECT_FIX = "Register the final URL: Magic Hour does not follow redirects."
NO_ANSWER_FIX = (
    "Make sure the handler is running at this URL and answers within 10 s "
    "(answer first, process later)."
)


def _unexpected(exchange: Exchange) -> tuple[str, str] | None:
    """The detail and fix for an answer no check wants: none, a redirect, a crash."""
    if exchange.status is None:
        return f"no answer to {exchange.label}: {exchange.error}", NO_ANSWER_FIX
    if 300 <= exchange.status < 400:
        where = f" to {exchange.location}" if exchange.location else ""
        return f"redirected {exchange.status}{where}", REDIRECT_FIX
    if exchange.status >= 500:
        return (
            f"crashed on {exchange.label}: Magic Hour will retry it for 24 hours",
            CRASH_FIX,
        )
    return None


def _accepted(
    check: HandlerCheck,
    exchanges: Sequence[Exchange],
    passed: str,
    refused_fix: str,
) -> CheckResult:
    """Passed when every answer is 2xx; a 4xx fails with ``refused_fix``."""
    bad = next((exchange for exchange in exchanges if not _is_2xx(exchange)), None)
    if bad is None:
        return CheckResult(
            check.id, CheckOutcome.PASSED, check.sends, passed, None, exchanges[0], tuple(exchanges)
        )
    detail, fix = _unexpected(bad) or (
        f"refused {bad.label} with {bad.status}: Magic Hour will retry it for 24 hours, "
        "then give up",
        refused_fix,
    )
    return CheckResult(
        check.id, CheckOutcome.FAILED, check.sends, detail, fix, bad, tuple(exchanges)
    )


def _rejected(check: HandlerCheck, exchange: Exchange, accepted: str, fix: str) -> CheckResult:
    """Passed on a 4xx; a 2xx fails with ``accepted`` (what accepting it means) and ``fix``."""
    if _is_4xx(exchange):
        detail = f"rejected with {exchange.status}"
        return CheckResult(
            check.id, CheckOutcome.PASSED, check.sends, detail, None, exchange, (exchange,)
        )
    if _is_2xx(exchange):
        detail = accepted
        return CheckResult(
            check.id, CheckOutcome.FAILED, check.sends, detail, fix, exchange, (exchange,)
        )
    unexpected = _unexpected(exchange)
    assert unexpected is not None
    detail, other_fix = unexpected
    if exchange.status is not None and exchange.status >= 500:
        detail = "rejected by crashing: Magic Hour will retry it for 24 hours"
    return CheckResult(
        check.id, CheckOutcome.FAILED, check.sends, detail, other_fix, exchange, (exchange,)
    )


VERIFY_FIX = (
    'Verify magic-hour-event-signature: the hex HMAC-SHA256 of "{timestamp}.{raw body}" '
    "with your webhook secret, compared in constant time; answer 401 when it differs."
)


@_grader("signed-events-accepted")
async def _signed_events(battery: _Battery, check: HandlerCheck) -> CheckResult:
    exchanges = []
    for event_type in EVENT_TYPES:
        if event_type == "video.completed":
            genuine = battery.genuine_signature
            exchanges.append(await battery.send(event_type, battery.genuine, genuine))
        else:
            body = serialize(battery.event(event_type))
            exchanges.append(await battery.send(event_type, body, battery.signed()))
    statuses = sorted({exchange.status for exchange in exchanges if exchange.status})
    return _accepted(
        check,
        exchanges,
        f"2xx for each of the {len(exchanges)} ({', '.join(map(str, statuses))})",
        "Check the secret is the one Magic Hour shows for this webhook, and verify the raw "
        "body bytes as received, not JSON parsed and serialized again.",
    )


@_grader("forged-signature-rejected")
async def _forged(battery: _Battery, check: HandlerCheck) -> CheckResult:
    # A genuine-looking signature (the right key when known) over bytes never sent.
    key = battery.secret or secrets.token_hex(16)
    other = serialize(battery.event("image.completed", offset_ms=1))

    def forged(_: bytes) -> dict[str, str]:
        timestamp = int(time.time())
        return {SIGNATURE_HEADER: sign(key, timestamp, other), TIMESTAMP_HEADER: str(timestamp)}

    body = serialize(battery.event("video.completed", offset_ms=2))
    exchange = await battery.send("video.completed, forged signature", body, forged)
    return _rejected(
        check, exchange, "accepted a forged request: it does not verify signatures", VERIFY_FIX
    )


@_grader("wrong-secret-rejected")
async def _wrong_secret(battery: _Battery, check: HandlerCheck) -> CheckResult:
    body = serialize(battery.event("video.completed", offset_ms=3))
    signature = battery.signed(secret="whsec_" + secrets.token_hex(16))
    exchange = await battery.send("video.completed, another secret", body, signature)
    return _rejected(
        check,
        exchange,
        "accepted a request signed with another secret: it does not verify signatures",
        VERIFY_FIX,
    )


@_grader("tampered-body-rejected")
async def _tampered(battery: _Battery, check: HandlerCheck) -> CheckResult:
    import json

    event = json.loads(battery.genuine)
    event["payload"]["downloads"][0]["url"] = ATTACKER_URL
    exchange = await battery.send(
        "video.completed, download URL changed", serialize(event), battery.genuine_signature
    )
    return _rejected(
        check,
        exchange,
        "accepted a genuine signature on a changed body: it does not check the signature "
        "against the bytes it received",
        "Verify the signature over the raw body as received, before parsing it, and never "
        "accept a request because its signature was seen before.",
    )


AGE_FIX = (
    f"Reject a timestamp more than {DEFAULT_TOLERANCE_SECONDS // 60} minutes from now in "
    "either direction (abs(now - timestamp) > 300): a captured delivery could be replayed."
)


@_grader("stale-timestamp-rejected")
async def _stale(battery: _Battery, check: HandlerCheck) -> CheckResult:
    body = serialize(battery.event("video.completed", offset_ms=4))
    exchange = await battery.send(
        "video.completed, 10 min old", body, battery.signed(-CLOCK_SKEW_SECONDS)
    )
    return _rejected(check, exchange, "accepted a request signed 10 minutes ago", AGE_FIX)


@_grader("future-timestamp-rejected")
async def _future(battery: _Battery, check: HandlerCheck) -> CheckResult:
    body = serialize(battery.event("video.completed", offset_ms=5))
    exchange = await battery.send(
        "video.completed, 10 min ahead", body, battery.signed(CLOCK_SKEW_SECONDS)
    )
    return _rejected(check, exchange, "accepted a timestamp 10 minutes in the future", AGE_FIX)


@_grader("unsigned-rejected")
async def _unsigned(battery: _Battery, check: HandlerCheck) -> CheckResult:
    body = serialize(battery.event("video.completed", offset_ms=6))
    exchange = await battery.send("video.completed, unsigned", body, lambda _: {})
    return _rejected(
        check,
        exchange,
        "accepted a request without a signature",
        f"Answer 401 when {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} is missing, "
        "instead of skipping verification.",
    )


@_grader("retry-accepted")
async def _retry(battery: _Battery, check: HandlerCheck) -> CheckResult:
    # The same bytes, signed a second apart: Magic Hour re-signs each attempt.
    body = serialize(battery.event("video.completed", offset_ms=7))
    first = await battery.send("video.completed", body, battery.signed(-1))
    again = await battery.send("video.completed, retried", body, battery.signed())
    return _accepted(
        check,
        [first, again],
        f"2xx both times ({first.status}, {again.status})",
        "Deduplicate by payload.id and answer 2xx to a duplicate: Magic Hour delivers again "
        "whenever it did not see a 2xx in time.",
    )


@_grader("unknown-fields-accepted")
async def _unknown_fields(battery: _Battery, check: HandlerCheck) -> CheckResult:
    event = battery.event("video.completed", offset_ms=8)
    event["api_version"] = "2026-01-01"
    event["payload"]["thumbnail"] = {"url": "https://videos.magichour.ai/thumb.jpg"}
    event["payload"]["downloads"][0]["size_bytes"] = 1048576
    exchange = await battery.send(
        "video.completed, extra fields", serialize(event), battery.signed()
    )
    return _accepted(
        check,
        [exchange],
        f"accepted ({exchange.status})",
        "Ignore fields you do not know (no strict schema, no extra='forbid'): Magic Hour adds "
        "fields without notice.",
    )


@_grader("unknown-event-type-accepted")
async def _unknown_type(battery: _Battery, check: HandlerCheck) -> CheckResult:
    event = battery.event(UNKNOWN_EVENT_TYPE, offset_ms=9)
    event["payload"]["status"] = "queued"
    exchange = await battery.send(UNKNOWN_EVENT_TYPE, serialize(event), battery.signed())
    fix = "Answer 2xx to event types you do not handle and ignore them: Magic Hour may add types."
    if _is_4xx(exchange):
        detail = "refused an event type it does not know"
        return CheckResult(
            check.id, CheckOutcome.ADVICE, check.sends, detail, fix, exchange, (exchange,)
        )
    return _accepted(check, [exchange], f"accepted ({exchange.status})", fix)


@_grader("non-json-not-5xx")
async def _not_json(battery: _Battery, check: HandlerCheck) -> CheckResult:
    exchange = await battery.send("a body cut off mid-JSON", NOT_JSON, battery.signed())
    fix = (
        "Answer 400 to a body you cannot parse: a 5xx makes Magic Hour retry for 24 hours, "
        "a 2xx tells it the event was handled."
    )
    if _is_2xx(exchange):
        detail = "accepted a body that is not JSON"
        return CheckResult(
            check.id, CheckOutcome.ADVICE, check.sends, detail, fix, exchange, (exchange,)
        )
    result = _rejected(check, exchange, "", fix)
    if result.outcome is CheckOutcome.FAILED and exchange.status is not None:
        result = replace(result, fix=fix)
    return result


@_grader("answers-within-10s")
async def _answers_within(battery: _Battery, check: HandlerCheck) -> CheckResult:
    exchanges = battery.sent
    limit_ms = battery.time_limit * 1000
    if not exchanges:
        return CheckResult(check.id, CheckOutcome.SKIPPED, check.sends, "skipped: nothing was sent")
    latencies = sorted(exchange.latency_ms for exchange in exchanges if exchange.status)
    spread = (
        f"p50 {_percentile(latencies, 0.5):.0f} ms, p99 {_percentile(latencies, 0.99):.0f} ms"
        if latencies
        else "no answers"
    )
    late = [e for e in exchanges if e.status is None or e.latency_ms >= limit_ms]
    if not late:
        return CheckResult(
            check.id,
            CheckOutcome.PASSED,
            check.sends,
            f"{len(exchanges)} answers, {spread}",
            None,
            None,
            tuple(exchanges),
        )
    slowest = max(late, key=lambda exchange: (exchange.status is None, exchange.latency_ms))
    if slowest.status is None:
        detail = f"no answer to {slowest.label}: {slowest.error}"
    else:
        detail = (
            f"answered {slowest.label} after {slowest.latency_ms / 1000:.1f} s, past the "
            f"{battery.time_limit:g} s Magic Hour waits ({spread})"
        )
    return CheckResult(
        check.id,
        CheckOutcome.FAILED,
        check.sends,
        detail,
        "Answer first and process later (a background task or a queue): Magic Hour counts a "
        "late answer as a failed delivery and sends it again.",
        slowest,
        tuple(exchanges),
    )


@_grader("burst-within-10s")
async def _burst(battery: _Battery, check: HandlerCheck) -> CheckResult:
    sends = f"{battery.burst} concurrent signed video.completed events"
    if battery.halted is not None:
        return CheckResult(check.id, CheckOutcome.FAILED, sends, battery.halted, NO_ANSWER_FIX)
    bodies = [
        serialize(battery.event("video.completed", offset_ms=100 + number))
        for number in range(battery.burst)
    ]
    exchanges = await asyncio.gather(
        *(
            battery.send(f"video.completed #{number + 1}", body, battery.signed(), record=False)
            for number, body in enumerate(bodies)
        )
    )
    limit_ms = battery.time_limit * 1000
    latencies = sorted(exchange.latency_ms for exchange in exchanges if exchange.status)
    spread = f"p50 {_percentile(latencies, 0.5):.0f} ms, p99 {_percentile(latencies, 0.99):.0f} ms"
    result = _accepted(
        replace(check, sends=sends),
        exchanges,
        f"{len(exchanges)} of {len(exchanges)} 2xx, {spread}",
        "Accept concurrent deliveries: answer at once and queue the work; Magic Hour sends "
        "events as jobs finish, many at a time.",
    )
    late = [exchange for exchange in exchanges if exchange.latency_ms >= limit_ms]
    if result.outcome is CheckOutcome.PASSED and late:
        slowest = max(late, key=lambda exchange: exchange.latency_ms)
        return replace(
            result,
            outcome=CheckOutcome.FAILED,
            detail=(
                f"{len(late)} of {len(exchanges)} answered after {battery.time_limit:g} s "
                f"(the slowest in {slowest.latency_ms / 1000:.1f} s; {spread})"
            ),
            fix="Answer first and process later: under a burst, work done before answering "
            "queues up past Magic Hour's 10 s.",
            answer=slowest,
        )
    return result


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest rank, as ``mhw send --count`` reports it."""
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]
