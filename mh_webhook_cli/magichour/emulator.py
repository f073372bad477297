"""A local Magic Hour: the API subset mhw uses, jobs that progress, signed webhooks with retries.

``mhw emulate`` runs it as a server, and tests (mhw's and ``mhw trigger``'s) start it in-process::

    emulator = Emulator(EmulatorConfig(webhook_urls=(url,), secret=secret), on_event=print)
    base_url = await emulator.start("127.0.0.1", 0)   # point clients at MAGIC_HOUR_API_BASE
    ...
    await emulator.close()

The API honours the same contract as the real one (see ``magichour_api``): ``Authorization:
Bearer KEY`` on every ``/v1`` route (401 without one, or with another than ``api_key`` when it is
set), 422 with ``{"code": "invalid_request", "message": "style.prompt is required"}`` for a bad
body, ``{"message"}`` alone for 401, 402, 404 and 405, as the real API mixes both shapes. Credits
are charged when a job is created and refunded when it errors (its ``credits_charged`` drops to 0).

A job is ``queued`` for ``queue_seconds``, ``rendering`` for ``render_seconds``, then
``complete`` or, with probability ``fail_rate``, ``error``. Each change that Magic Hour announces
sends its event (``{kind}.started``, ``.completed``, ``.errored``) to every webhook URL; the
event's payload is the very dict that ``GET /v1/{kind}-projects/{id}`` returns from then on,
built by :func:`mh_webhook_cli.core.fixtures.project_payload` so it matches the shipped spec. Like
Magic Hour, ``image.started`` is skipped for fast jobs (a render under one second).

Deliveries behave like a Developer Hub registration: compact JSON, both signature headers, a 2xx
wanted within ``delivery_timeout``; any other outcome is retried after 1 s, 2 s, 4 s ... until
``max_retry_seconds`` (24 h) have passed, the whole schedule run ``speed`` times faster. Every
attempt is signed anew: a retry carrying the first attempt's timestamp would look stale to a
handler that checks the 300 s tolerance. Each URL has ``delivery_concurrency`` senders taking
deliveries from its queue, first come first served; a failed one waits for its retry on a
timer, holding no sender, so a failing delivery never holds up the others, and the work per
delivery stays the same however long the queue grows. A project's events make their *first*
attempts in order (``started`` is answered, or fails, before ``completed`` is sent); retries
come when they come. A handler's answer is read only up to ``MAX_ANSWER_BYTES``, and only
counted, never kept.

Download URLs point at the emulator itself (``/downloads/<id>/output.png``, ``.mp3`` for
audio, tiny valid files, no key needed), so a client can fetch outputs offline.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import os
import random
import re
import signal
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING, Any, Union

from mh_webhook_cli.core.catalog import ProjectStatus
from mh_webhook_cli.core.fixtures import ERROR_CODES, cuid, project_payload
from mh_webhook_cli.core.request import Request, matches
from mh_webhook_cli.errors import MhwError
from mh_webhook_cli.magichour.api import estimate_credits
from mh_webhook_cli.receive.http import Response, Server, serve
from mh_webhook_cli.send.client import READ_LIMIT
from mh_webhook_cli.send.delivery import (
    MAGIC_HOUR_TIMEOUT_SECONDS,
    RETRY_BASE_DELAY_SECONDS,
    Delivery,
    Signer,
    deliver,
    serialize,
)

if TYPE_CHECKING:
    import ssl

    import httpx

DEFAULT_PORT = 8788
"""Next to ``mhw listen``'s 8787, so both run side by side."""
DEFAULT_CREDITS = 1_000_000
MAX_RETRY_SECONDS = 24 * 60 * 60
"""Magic Hour keeps retrying a failed delivery for a day."""
FAST_RENDER_SECONDS = 1.0
"""Image renders shorter than this send no ``image.started``, as Magic Hour's fast modes do."""
DEFAULT_DELIVERY_CONCURRENCY = 16
"""Attempts in flight to one webhook URL. Against a handler answering at once, 4 to 64 senders
drain a 2,000-job burst alike (the emulator's core is the limit; bench/emulate_burst.py), so
the number matters for slow handlers: 16 still gets 160 events a second through one that takes
100 ms, without handing a development server (a few threads or workers) more than it can take."""
MAX_DELIVERY_CONCURRENCY = 256
"""Each sender builds its own client (~3 ms): a typo of 100000 would stall the start for minutes."""
MAX_ANSWER_BYTES = READ_LIMIT
"""What a delivery reads of a handler's answer, a chunk at a time and thrown away, before it
closes on it as failed: an answer is a status and a few bytes, a framework's debug page a few
hundred KiB; one that goes on past this is a broken handler (or one trying to tie us up)."""
MAX_IMAGES = 4
MAX_VOICE_PROMPT = 1000
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "4:5", "5:4", "2:3", "3:2", "21:9")
EMULATED_KINDS = ("image", "audio")
"""The kinds of project the emulator can create; ``video-projects`` exists but is always 404."""

_PROJECT_TYPES = {"image": "AI_IMAGE", "audio": "VOICE_GENERATOR"}
_DEFAULT_NAMES = {"image": "Ai Image", "audio": "Voice Generator"}
_OUTPUTS = {"image": ("png", "image/png"), "audio": ("mp3", "audio/mpeg")}
_EVENT_ACTIONS = {"rendering": "started", "complete": "completed", "error": "errored"}
"""The statuses Magic Hour announces, and the action their event is named after."""
_PROJECT_PATH = re.compile(r"/v1/(video|image|audio)-projects/([^/]+)")
_DOWNLOAD_PATH = re.compile(r"/downloads/([^/]+)/output\.([a-z0-9]+)")
_BEARER = re.compile(r"Bearer[ \t]+(\S+)[ \t]*", re.IGNORECASE)
_JSON_HEADERS = (("content-type", "application/json"),)


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulated Magic Hour behaves; invalid values raise ValueError (one line)."""

    api_key: str | None = None
    """The only key accepted; None accepts any non-empty bearer key."""
    credits: int = DEFAULT_CREDITS
    queue_seconds: float = 0.5
    render_seconds: float = 2.0
    fail_rate: float = 0.0
    """The chance, 0 to 1, that a job ends in ``error`` rather than ``complete``."""
    error_code: str | None = None
    """The error a failed job reports, where that kind documents it; else the kind's first."""
    seed: int | None = None
    """Makes project ids and which jobs fail repeatable."""
    webhook_urls: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    """The event types the registration lists (globs like ``image.*``); none means all."""
    secret: str | None = None
    """Signs every delivery; required when there are webhook URLs."""
    speed: float = 1.0
    """Divides every retry delay and the 24 h limit: 100 makes 1 s, 2 s, 4 s 10, 20, 40 ms."""
    delivery_timeout: float = MAGIC_HOUR_TIMEOUT_SECONDS
    max_retry_seconds: float = MAX_RETRY_SECONDS
    """How long, in Magic Hour's time (before ``speed``), a failing delivery is retried."""
    delivery_concurrency: int = DEFAULT_DELIVERY_CONCURRENCY
    """Attempts in flight to each webhook URL at most; the others wait their turn."""

    def __post_init__(self) -> None:
        if self.webhook_urls and not self.secret:
            raise ValueError("webhook deliveries need a secret to sign them with")
        if not 0 <= self.fail_rate <= 1:
            raise ValueError(f"the fail rate must be between 0 and 1, not {self.fail_rate:g}")
        if self.speed <= 0:
            raise ValueError(f"the speed must be above 0, not {self.speed:g}")
        if self.credits < 0:
            raise ValueError(f"credits cannot be negative ({self.credits})")
        if min(self.queue_seconds, self.render_seconds) < 0:
            raise ValueError("job durations cannot be negative")
        if self.delivery_timeout <= 0 or self.max_retry_seconds < 0:
            raise ValueError("the delivery timeout must be above 0 and the retry time positive")
        if not 1 <= self.delivery_concurrency <= MAX_DELIVERY_CONCURRENCY:
            raise ValueError(
                f"the delivery concurrency must be from 1 to {MAX_DELIVERY_CONCURRENCY}, "
                f"not {self.delivery_concurrency}"
            )
        known = [code for kind in EMULATED_KINDS for code in ERROR_CODES[kind]]
        if self.error_code is not None and self.error_code not in known:
            raise ValueError(
                f"unknown error code {self.error_code!r}; choose one of "
                + ", ".join(dict.fromkeys(known))
            )

    def error_code_for(self, kind: str) -> str:
        """The error a failed ``kind`` job reports: ``error_code`` if that kind has it."""
        documented = ERROR_CODES[kind]
        if self.error_code is not None and self.error_code in documented:
            return self.error_code
        return next(iter(documented))


# What happens, as reported to ``on_event``: frozen records, so a presenter may keep them.


@dataclass(frozen=True)
class ApiCall:
    """One request to the emulated API, and its answer."""

    at: float
    method: str
    path: str
    status: int
    latency_ms: float
    client: str


@dataclass(frozen=True)
class JobChange:
    """A project changed status; ``event_type`` is the event it sends, if any."""

    at: float
    project_id: str
    kind: str
    status: ProjectStatus
    credits_charged: int
    event_type: str | None
    skipped_event: str | None = None
    """The event Magic Hour skips here (``image.started`` of a fast render)."""
    error_code: str | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of an event to a webhook URL and what came of it."""

    at: float
    event_type: str
    project_id: str
    url: str
    attempt: int
    status: int | None
    """The handler's answer; None when there was none (``error`` says why)."""
    error: str | None
    latency_ms: float
    timestamp: int
    """The signed ``magic-hour-event-timestamp`` of this attempt."""
    retry_in: float | None
    """Seconds until the next attempt (after ``speed``); None when this one was the last."""
    gave_up: bool

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Activity = Union[ApiCall, JobChange, DeliveryAttempt]  # noqa: UP007 (a runtime alias)


@dataclass
class EmulatorStats:
    """Counts for the summary when the emulator stops."""

    jobs: int = 0
    completed: int = 0
    errored: int = 0
    delivered: int = 0
    """Events a handler accepted with a 2xx."""
    attempts: int = 0
    retries: int = 0
    """Attempts after a failed one."""
    given_up: int = 0
    """Events still failing when the retry time ran out."""
    unfinished: int = 0
    """Events whose delivery was still under way (or waiting to retry) at close."""


@dataclass
class _Project:
    kind: str
    id: str
    name: str
    created_at: datetime
    cost: int
    image_count: int
    fails: bool
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class _Outgoing:
    """An event on its way to one URL, between attempts: what the next attempt needs."""

    delivery: Delivery
    project_id: str
    attempt: int = 1
    delay: float = RETRY_BASE_DELAY_SECONDS
    """Before the retry that follows a failure of this attempt, in Magic Hour's time."""
    began: float | None = None
    """The loop time of the first attempt: the retry limit counts from there."""
    retry: asyncio.TimerHandle | None = None
    """The timer that queues it again, while it waits to retry."""

    @property
    def order_key(self) -> tuple[str, str]:
        return (self.project_id, self.delivery.url)


class _Invalid(Exception):
    """A request body the API refuses with 422; the message names the field."""


class Emulator:
    """The emulated API and its webhook deliveries, on one asyncio loop.

    ``on_event`` hears about every API call, job change and delivery attempt as it happens,
    on the loop (keep it quick).
    """

    def __init__(
        self, config: EmulatorConfig, on_event: Callable[[Activity], None] | None = None
    ) -> None:
        self.config = config
        self.credits = config.credits
        self.stats = EmulatorStats()
        self._on_event = on_event
        # Not for secrets: ids and failures that a seed makes repeatable.
        self._random = random.Random(config.seed)  # noqa: S311
        self._signer = Signer(config.secret)
        self._projects: dict[str, _Project] = {}
        self._api_key = None if config.api_key is None else _key_bytes(config.api_key)
        self._jobs: set[asyncio.Task[None]] = set()
        self._queues: dict[str, asyncio.Queue[_Outgoing]] = {}
        """Per webhook URL, the deliveries ready for an attempt, in order."""
        self._senders: list[asyncio.Task[None]] = []
        self._outgoing: set[_Outgoing] = set()
        """Every event not yet delivered nor given up: queued, in flight or waiting to retry."""
        self._in_order: dict[tuple[str, str], deque[_Outgoing]] = {}
        """(project, URL) pairs with an event whose first attempt is yet to be made, and the
        project's later events for that URL, held back until it has been."""
        self._server: Server | None = None
        self._account_id = ""
        self.base_url = ""
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
        """Start serving (``port`` 0 picks a free one); returns the base URL for clients.

        OSError when the address cannot be bound.
        """
        from mh_webhook_cli.core.hosts import reachable_host

        if self.config.webhook_urls:
            import httpx

            loop = asyncio.get_running_loop()
            # httpx's default trust (certifi, SSL_CERT_FILE), built once for all the senders:
            # ~20 ms each.
            tls = httpx.create_ssl_context()
            for url in dict.fromkeys(self.config.webhook_urls):
                queue: asyncio.Queue[_Outgoing] = asyncio.Queue()
                self._queues[url] = queue
                self._senders += [
                    loop.create_task(self._deliver_from(queue, tls))
                    for _ in range(self.config.delivery_concurrency)
                ]
        self._server = await serve(self.handle, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://{reachable_host(host)}:{self.port}"
        self._account_id = self._new_id(datetime.now(timezone.utc))
        return self.base_url

    async def close(self) -> None:
        """Stop serving, end jobs and deliveries under way (counted as unfinished)."""
        if self._server is not None:
            self._server.close()
        self.stats.unfinished = len(self._outgoing)
        for outgoing in self._outgoing:
            if outgoing.retry is not None:
                outgoing.retry.cancel()
        tasks = [*self._jobs, *self._senders]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run_until_stopped(self, host: str, port: int, on_ready: Callable[[str], None]) -> int:
        """Serve until SIGINT or SIGTERM, then close; ``on_ready`` gets the base URL.

        Returns the exit code (0): stopping is how an emulator is meant to end.
        """
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Before starting: a script may stop us the moment it learns we are ready.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            url = await self.start(host, port)
        except OSError as failure:
            reason = os.strerror(failure.errno) if failure.errno else str(failure)
            hint = " (use --port 0 for a free port)" if failure.errno == errno.EADDRINUSE else ""
            raise MhwError(f"cannot listen on {host}:{port}: {reason}{hint}") from None
        try:
            on_ready(url)
            await stop.wait()
        finally:
            await self.close()
        return 0

    def project(self, project_id: str) -> dict[str, Any] | None:
        """A project as ``GET /v1/{kind}-projects/{id}`` returns it now, or None."""
        found = self._projects.get(project_id)
        return found.payload if found is not None else None

    # the API

    def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        response = self._route(request)
        self._report(
            ApiCall(
                at=time.time(),
                method=request.method,
                path=request.target,
                status=response.status,
                latency_ms=(time.perf_counter() - started) * 1000,
                client=request.client,
            )
        )
        return response

    def _route(self, request: Request) -> Response:
        path = request.path
        method = request.method
        routes: dict[str, Callable[[Request], Response]]
        if path == "/v1/account":
            routes = {"GET": self._account}
        elif path == "/v1/ai-image-generator":
            routes = {"POST": self._create_image}
        elif path == "/v1/ai-voice-generator":
            routes = {"POST": self._create_voice}
        elif match := _PROJECT_PATH.fullmatch(path):
            kind, project_id = match.groups()
            routes = {"GET": lambda _: self._get_project(kind, project_id)}
        elif match := _DOWNLOAD_PATH.fullmatch(path):
            project_id, extension = match.groups()
            if method == "GET":
                return self._download(project_id, extension)
            return _method_not_allowed(("GET",))
        else:
            return _error(404, f"no such route: {method} {path}")
        if method not in routes:
            return _method_not_allowed(tuple(routes))
        refusal = self._authorize(request)
        return refusal if refusal is not None else routes[method](request)

    def _authorize(self, request: Request) -> Response | None:
        match = _BEARER.fullmatch(request.header("authorization") or "")
        if match is None:
            return _error(401, "missing API key: send the header 'Authorization: Bearer <key>'")
        # Constant time: how long a refusal takes says nothing about how much of a key was right.
        key = _key_bytes(match.group(1))
        if self._api_key is not None and not hmac.compare_digest(key, self._api_key):
            return _error(401, "invalid API key")
        return None

    def _account(self, _: Request) -> Response:
        return _json(
            200,
            {
                "id": self._account_id,
                "email": "developer@example.com",
                "credits": self.credits,
                "tier": "free",
                "subscription": None,
            },
        )

    def _create_image(self, request: Request) -> Response:
        try:
            body = _object_body(request)
            image_count = body.get("image_count")
            if image_count is None:
                raise _Invalid("image_count is required")
            if not _is_int(image_count) or not 1 <= image_count <= MAX_IMAGES:
                raise _Invalid(f"image_count must be an integer from 1 to {MAX_IMAGES}")
            aspect_ratio = body.get("aspect_ratio")
            if aspect_ratio is not None and aspect_ratio not in ASPECT_RATIOS:
                raise _Invalid(f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}")
            style = _style(body)
            _non_empty_string(style, "prompt")
            _optional_string(style, "style.tool", "tool")
            name = _optional_string(body, "name", "name")
        except _Invalid as invalid:
            return _error(422, str(invalid), code="invalid_request")
        cost = estimate_credits("image", "", image_count)
        return self._create("image", name, cost, image_count, extra={"frame_cost": cost})

    def _create_voice(self, request: Request) -> Response:
        try:
            body = _object_body(request)
            style = _style(body)
            prompt = _non_empty_string(style, "prompt")
            if len(prompt) > MAX_VOICE_PROMPT:
                raise _Invalid(
                    f"style.prompt must be at most {MAX_VOICE_PROMPT} characters "
                    f"(it has {len(prompt)})"
                )
            _non_empty_string(style, "voice_name")
            name = _optional_string(body, "name", "name")
        except _Invalid as invalid:
            return _error(422, str(invalid), code="invalid_request")
        # Integers: ceil(0.1 * 30) is 4 in floating point.
        return self._create("audio", name, estimate_credits("audio", prompt))

    def _create(
        self,
        kind: str,
        name: str | None,
        cost: int,
        image_count: int = 1,
        extra: Mapping[str, int] | None = None,
    ) -> Response:
        if cost > self.credits:
            return _error(
                402, f"not enough credits: this job costs {cost}, the account has {self.credits}"
            )
        self.credits -= cost
        now = datetime.now(timezone.utc)
        project = _Project(
            kind=kind,
            id=self._new_id(now),
            name=name or f"{_DEFAULT_NAMES[kind]} - {now:%Y-%m-%d %H:%M:%S}",
            created_at=now,
            cost=cost,
            image_count=image_count,
            # Drawn now, with the id, so that a seed decides the same jobs fail every run.
            fails=self._random.random() < self.config.fail_rate,
        )
        self._projects[project.id] = project
        self.stats.jobs += 1
        self._advance(project, "queued")
        task = asyncio.get_running_loop().create_task(self._run_job(project))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return _json(200, {"id": project.id, "credits_charged": cost, **(extra or {})})

    def _get_project(self, kind: str, project_id: str) -> Response:
        project = self._projects.get(project_id)
        if project is None or project.kind != kind:
            return _error(404, f"no {kind} project with id {project_id!r}")
        return _json(200, project.payload)

    def _download(self, project_id: str, extension: str) -> Response:
        project = self._projects.get(project_id)
        if (
            project is None
            or project.payload["status"] != "complete"
            or _OUTPUTS[project.kind][0] != extension
        ):
            return _error(404, "no such file")
        content_type = _OUTPUTS[project.kind][1]
        data = _tiny_png() if project.kind == "image" else _tiny_mp3()
        return Response(200, data, (("content-type", content_type),))

    def _new_id(self, now: datetime) -> str:
        return cuid(now, self._random.getrandbits(128).to_bytes(16, "big"))

    # jobs

    async def _run_job(self, project: _Project) -> None:
        await asyncio.sleep(self.config.queue_seconds)
        self._advance(project, "rendering")
        await asyncio.sleep(self.config.render_seconds)
        self._advance(project, "error" if project.fails else "complete")

    def _advance(self, project: _Project, status: ProjectStatus) -> None:
        """Move a project to ``status``: its new payload, the refund, the event it sends."""
        failed = status == "error"
        if failed:
            self.credits += project.cost
            self.stats.errored += 1
        elif status == "complete":
            self.stats.completed += 1
        error_code = self.config.error_code_for(project.kind) if failed else None
        extension = _OUTPUTS[project.kind][0]
        project.payload = project_payload(
            project.kind,
            project_id=project.id,
            project_type=_PROJECT_TYPES[project.kind],
            name=project.name,
            status=status,
            created_at=project.created_at,
            now=datetime.now(timezone.utc),
            credits_charged=0 if failed else project.cost,
            error_code=error_code,
            download_urls=(
                [f"{self.base_url}/downloads/{project.id}/output.{extension}"]
                if status == "complete"
                else ()
            ),
            image_count=project.image_count,
        )
        action = _EVENT_ACTIONS.get(status)
        event_type = f"{project.kind}.{action}" if action else None
        skipped = event_type == "image.started" and self.config.render_seconds < FAST_RENDER_SECONDS
        self._report(
            JobChange(
                at=time.time(),
                project_id=project.id,
                kind=project.kind,
                status=status,
                credits_charged=project.payload["credits_charged"],
                event_type=None if skipped else event_type,
                skipped_event=event_type if skipped else None,
                error_code=error_code,
            )
        )
        if event_type is not None and not skipped and matches(event_type, self.config.events):
            # The same dict GET returns: serialized now, so the event is this moment's state.
            body = serialize({"type": event_type, "payload": project.payload})
            for url in self.config.webhook_urls:
                self._send(Delivery(url, body, event_type), project.id)

    # deliveries

    def _send(self, delivery: Delivery, project_id: str) -> None:
        """Queue an event for a URL: O(1), so creating jobs never waits on deliveries."""
        outgoing = _Outgoing(delivery, project_id)
        self._outgoing.add(outgoing)
        waiting = self._in_order.get(outgoing.order_key)
        if waiting is not None:  # an earlier event of this project has yet to make its attempt
            waiting.append(outgoing)
            return
        self._in_order[outgoing.order_key] = deque()
        self._queues[delivery.url].put_nowait(outgoing)

    def _first_attempt_made(self, key: tuple[str, str]) -> None:
        """Release the project's next event for that URL, if one waits behind this one."""
        waiting = self._in_order[key]
        if waiting:
            following = waiting.popleft()
            self._queues[following.delivery.url].put_nowait(following)
        else:
            del self._in_order[key]

    async def _deliver_from(self, queue: asyncio.Queue[_Outgoing], tls: ssl.SSLContext) -> None:
        """One of a URL's senders: attempt queued deliveries one at a time, forever.

        Each sender has its own client and keep-alive connection. One pool shared by all
        would cost more per request the more connections it has: httpcore scans them all
        (and every waiting request) whenever a request comes or goes. In
        bench/emulate_burst.py, 64 senders sharing a pool took 5 times as long to drain a
        2,000-job burst as 64 with a connection each.
        """
        import httpx

        loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            timeout=self.config.delivery_timeout,
            verify=tls,
            follow_redirects=False,
            limits=limits,
        ) as client:
            while True:
                outgoing = await queue.get()
                try:
                    await self._attempt(client, outgoing)
                except Exception as failure:  # a bug (say in on_event): report it, keep sending
                    loop.call_exception_handler(
                        {"message": "webhook delivery failed", "exception": failure}
                    )

    async def _attempt(self, client: httpx.AsyncClient, outgoing: _Outgoing) -> None:
        """One attempt; a failure is queued again after its back-off, as Magic Hour retries."""
        loop = asyncio.get_running_loop()
        speed = self.config.speed
        if outgoing.began is None:
            outgoing.began = loop.time()
        status, error, latency_ms, timestamp = await self._post(client, outgoing.delivery)
        if outgoing.attempt == 1:
            self._first_attempt_made(outgoing.order_key)
        ok = status is not None and 200 <= status < 300
        # In Magic Hour's time, as the schedule is: real seconds times the speed.
        elapsed = (loop.time() - outgoing.began) * speed
        retry = not ok and elapsed + outgoing.delay <= self.config.max_retry_seconds
        result = DeliveryAttempt(
            at=time.time(),
            event_type=outgoing.delivery.event or "",
            project_id=outgoing.project_id,
            url=outgoing.delivery.url,
            attempt=outgoing.attempt,
            status=status,
            error=error,
            latency_ms=latency_ms,
            timestamp=timestamp,
            retry_in=outgoing.delay / speed if retry else None,
            gave_up=not ok and not retry,
        )
        if retry:
            # A timer, not a sleeping task: waiting retries cost nothing and hold no sender.
            outgoing.retry = loop.call_later(outgoing.delay / speed, self._retry_due, outgoing)
            outgoing.delay *= 2
            outgoing.attempt += 1
        else:
            self._outgoing.discard(outgoing)
        self._count(result)
        self._report(result)

    def _retry_due(self, outgoing: _Outgoing) -> None:
        outgoing.retry = None
        self._queues[outgoing.delivery.url].put_nowait(outgoing)

    async def _post(
        self, client: httpx.AsyncClient, delivery: Delivery
    ) -> tuple[int | None, str | None, float, int]:
        """One attempt: the status or why there is none, the latency in ms, the timestamp.

        Signed now (a fresh timestamp every attempt), with the sender's own connection at
        hand, so the 10 s measure the handler, never a wait for a free connection. The
        answer is only judged: none of it is kept, and one that goes on past the read limit
        fails the attempt.
        """
        result = await deliver(
            client,
            delivery,
            self._signer,
            self.config.delivery_timeout,
            keep=0,
            tls_fix="use http:// for a local handler",
        )
        assert result.timestamp is not None  # the emulator always signs
        if result.status is not None and not result.response_complete:
            error = (
                f"the answer went on past {MAX_ANSWER_BYTES:,} bytes: closed unread "
                "(a handler should answer with a status and a few bytes)"
            )
            return None, error, result.latency_ms, result.timestamp
        return result.status, result.error, result.latency_ms, result.timestamp

    def _count(self, result: DeliveryAttempt) -> None:
        self.stats.attempts += 1
        if result.attempt > 1:
            self.stats.retries += 1
        if result.ok:
            self.stats.delivered += 1
        elif result.gave_up:
            self.stats.given_up += 1

    def _report(self, activity: Activity) -> None:
        if self._on_event is not None:
            self._on_event(activity)


# request bodies


def _key_bytes(key: str) -> bytes:
    """An API key as bytes to compare: lossless for any text a header or argv decodes to."""
    return key.encode("utf-8", "surrogateescape")


def _object_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):
        raise _Invalid("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object")
    return body


def _style(body: dict[str, Any]) -> dict[str, Any]:
    style = body.get("style")
    if style is None:
        raise _Invalid("style is required")
    if not isinstance(style, dict):
        raise _Invalid("style must be an object")
    return style


def _non_empty_string(style: dict[str, Any], key: str) -> str:
    value = style.get(key)
    if value is None:
        raise _Invalid(f"style.{key} is required")
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"style.{key} must be a non-empty string")
    return value


def _optional_string(container: dict[str, Any], path: str, key: str) -> str | None:
    # A null counts as absent: SDKs send it for options left unset.
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise _Invalid(f"{path} must be a string")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# responses


def _json(status: int, data: Any) -> Response:
    return Response(status, serialize(data), _JSON_HEADERS)


def _error(status: int, message: str, *, code: str | None = None) -> Response:
    return _json(status, {"code": code, "message": message} if code else {"message": message})


def _method_not_allowed(allowed: tuple[str, ...]) -> Response:
    body = serialize({"message": f"method not allowed; use {', '.join(allowed)}"})
    return Response(405, body, (*_JSON_HEADERS, ("allow", ", ".join(allowed))))


@cache
def _tiny_png() -> bytes:
    """A valid 1x1 PNG (one violet pixel): something a client can save and open."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\x8a\x2b\xe2")  # filter byte, then one RGB pixel
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@cache
def _tiny_mp3() -> bytes:
    """A quarter second of silence: MPEG-1 Layer III frames, 128 kbit/s, 44.1 kHz, mono.

    A frame whose side information is all zero carries no audio data: players decode it as
    silence. 144 * 128000 / 44100 rounds down to 417 bytes per frame.
    """
    frame = b"\xff\xfb\x90\xc4" + bytes(417 - 4)
    return frame * 10
