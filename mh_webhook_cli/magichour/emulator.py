"""A local Magic Hour: the API's most used routes, jobs that progress, signed webhooks with retries.

``mhw emulate`` runs it as a server, and tests (mhw's and ``mhw trigger``'s) start it in-process::

    emulator = Emulator(EmulatorConfig(webhook_urls=(url,), secret=secret), on_event=print)
    base_url = await emulator.start("127.0.0.1", 0)   # point clients at MAGIC_HOUR_API_BASE
    ...
    await emulator.close()

The routes are the official SDKs' (``magic-hour`` on PyPI and npm): ``GET /v1/account``, ``POST
/v1/ai-image-generator``, ``/v1/ai-voice-generator``, ``/v1/text-to-video`` and
``/v1/image-to-video``, ``GET`` and ``DELETE /v1/{video,image,audio}-projects/{id}`` (204, then
404). Every value is checked against the SDK's enums and the chosen model's rules, kept in
:mod:`mh_webhook_cli.magichour.api_reference`, which also prices each job by model, tier and
duration. ``Authorization: Bearer KEY`` is required on every ``/v1`` route; errors have the
SDKs' schemas: 401 ``{"message": "Unauthorized"}``, 404 ``{"message": "Not Found"}``, 422 (a bad
body; ``code`` is ``invalid_request``) and 402 ``{"message": ...}`` saying what is wrong. Credits
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

Creating a job costs the emulator a fraction of what delivering its event does (an HTTP
exchange through httpx), and both share one loop: answered as fast as clients ask, creations
took the loop and deliveries fell ever further behind (``bench/emulate_burst.py --saturated
10``: 3,835 jobs/s created against 355 webhooks/s delivered, the last event 19 s late), and
the time an attempt waited for the loop counted against its 10 s. So when more events wait
for their first attempt than ``BACKLOG_PER_SENDER`` per sender, a request that creates a
job is held, first come first served, until a first attempt makes room, for at most
``HOLD_SECONDS``: under load, jobs are created as fast as their events go out, and a client
feels it as a slower API, as from any server at capacity. The hold is capped so that a
handler that hangs (every sender waiting out its timeout) slows job creation without
stopping it.

Download URLs point at the emulator itself (``/downloads/<id>/output.png``; ``output-1.png`` ...
``output-N.png`` for N images, as SDKs save each under its URL's last segment; ``.mp3`` for audio,
``.mp4`` for video: tiny valid files, no key needed), so a client can fetch outputs offline.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import math
import os
import random
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING, Any, Union

from mh_webhook_cli.core.catalog import ProjectStatus
from mh_webhook_cli.core.fixtures import ERROR_CODES, VideoClip, cuid, project_payload
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.core.request import Request, matches
from mh_webhook_cli.errors import InvalidValue, MhwError
from mh_webhook_cli.event_loop import stop_on_signals
from mh_webhook_cli.magichour import api_reference as ref
from mh_webhook_cli.receive.http import Response, Server, serve
from mh_webhook_cli.send.client import READ_LIMIT
from mh_webhook_cli.send.delivery import Delivery, Signer, deliver, serialize
from mh_webhook_cli.send.retry import MAGIC_HOUR_RETRY_SECONDS, Backoff

if TYPE_CHECKING:
    import ssl

    import httpx

DEFAULT_PORT = 8788
"""Next to ``mhw listen``'s 8787, so both run side by side."""
DEFAULT_CREDITS = 1_000_000
FAST_RENDER_SECONDS = 1.0
"""Image renders shorter than this send no ``image.started``, as Magic Hour's fast modes do."""
DEFAULT_DELIVERY_CONCURRENCY = 16
"""Attempts in flight to one webhook URL. Against a handler answering at once, 4 to 64 senders
drain a 2,000-job burst alike (the emulator's core is the limit; bench/emulate_burst.py), so
the number matters for slow handlers: 16 still gets 160 events a second through one that takes
100 ms, without handing a development server (a few threads or workers) more than it can take."""
BACKLOG_PER_SENDER = 8
"""Events waiting for their first attempt, per sender, past which job creation is held: enough
to keep every sender busy, few enough that an event waits a fraction of a second."""
HOLD_SECONDS = 1.0
"""How long a job creation waits at most for room in the delivery backlog."""
MAX_DELIVERY_CONCURRENCY = 256
"""Each sender builds its own client (~3 ms): a typo of 100000 would stall the start for minutes."""
MAX_ANSWER_BYTES = READ_LIMIT
"""What a delivery reads of a handler's answer, a chunk at a time and thrown away, before it
closes on it as failed: an answer is a status and a few bytes, a framework's debug page a few
hundred KiB; one that goes on past this is a broken handler (or one trying to tie us up)."""
MAX_VIDEO_SECONDS = 3600
"""For the legacy video models, which document no durations: an hour bounds what a typo costs."""
EMULATED_KINDS = ("image", "audio", "video")
"""The kinds of project the emulator creates (and so the kinds of event it sends)."""

_CREATE_ROUTES = {
    # path: (kind, project type, default name)
    "/v1/ai-image-generator": ("image", "AI_IMAGE", "Ai Image"),
    "/v1/ai-voice-generator": ("audio", "VOICE_GENERATOR", "Voice Generator"),
    "/v1/text-to-video": ("video", "TEXT_TO_VIDEO", "Text To Video"),
    "/v1/image-to-video": ("video", "IMAGE_TO_VIDEO", "Image To Video"),
}
_OUTPUTS = {
    "video": ("mp4", "video/mp4"),
    "image": ("png", "image/png"),
    "audio": ("mp3", "audio/mpeg"),
}
_EVENT_ACTIONS = {"rendering": "started", "complete": "completed", "error": "errored"}
"""The statuses Magic Hour announces, and the action their event is named after."""
_ORIENTATION_RATIOS = {"landscape": "16:9", "portrait": "9:16", "square": "1:1"}
_PROJECT_PATH = re.compile(r"/v1/(video|image|audio)-projects/([^/]+)")
_DOWNLOAD_PATH = re.compile(r"/downloads/([^/]+)/output(?:-([1-9][0-9]?))?\.([a-z0-9]+)")
"""``output.png`` when a project has one output, ``output-1.png`` ... when it has several:
the SDKs save each download under its URL's last segment, so N outputs need N names."""
_BEARER = re.compile(r"Bearer[ \t]+(\S+)[ \t]*", re.IGNORECASE)
_JSON_HEADERS = (("content-type", "application/json"),)


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulated Magic Hour behaves; a bad value raises InvalidValue (one line)."""

    api_key: str | None = None
    """The only key accepted; None accepts any non-empty bearer key."""
    tier: str = "free"
    """The account's plan: some models are for paid tiers only, and video defaults depend on it."""
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
    max_retry_seconds: float = MAGIC_HOUR_RETRY_SECONDS
    """How long, in Magic Hour's time (before ``speed``), a failing delivery is retried."""
    delivery_concurrency: int = DEFAULT_DELIVERY_CONCURRENCY
    """Attempts in flight to each webhook URL at most; the others wait their turn."""

    def __post_init__(self) -> None:
        if self.webhook_urls and not self.secret:
            raise InvalidValue("webhook deliveries need a secret to sign them with")
        if not 0 <= self.fail_rate <= 1:
            raise InvalidValue(f"the fail rate must be between 0 and 1, not {self.fail_rate:g}")
        if self.speed <= 0:
            raise InvalidValue(f"the speed must be above 0, not {self.speed:g}")
        if self.credits < 0:
            raise InvalidValue(f"credits cannot be negative ({self.credits})")
        if self.tier not in ref.TIERS:
            raise InvalidValue(f"unknown tier {self.tier!r}; choose one of {', '.join(ref.TIERS)}")
        if min(self.queue_seconds, self.render_seconds) < 0:
            raise InvalidValue("job durations cannot be negative")
        if self.delivery_timeout <= 0 or self.max_retry_seconds < 0:
            raise InvalidValue("the delivery timeout must be above 0 and the retry time positive")
        if not 1 <= self.delivery_concurrency <= MAX_DELIVERY_CONCURRENCY:
            raise InvalidValue(
                f"the delivery concurrency must be from 1 to {MAX_DELIVERY_CONCURRENCY}, "
                f"not {self.delivery_concurrency}"
            )
        known = [code for kind in EMULATED_KINDS for code in ERROR_CODES[kind]]
        if self.error_code is not None and self.error_code not in known:
            raise InvalidValue(
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
    project_type: str
    id: str
    name: str
    created_at: datetime
    cost: int
    outputs: int
    """Files the project renders: ``image_count`` for images, else one."""
    clip: VideoClip | None
    fails: bool
    payload: dict[str, Any] = field(default_factory=dict)
    job: asyncio.Task[None] | None = None


@dataclass(eq=False)
class _Outgoing:
    """An event on its way to one URL, between attempts: what the next attempt needs."""

    delivery: Delivery
    project_id: str
    attempt: int = 1
    began: float | None = None
    """The loop time of the first attempt: the retry limit counts from there."""
    retry: asyncio.TimerHandle | None = None
    """The timer that queues it again, while it waits to retry."""

    @property
    def order_key(self) -> tuple[str, str]:
        return (self.project_id, self.delivery.url)


class _Invalid(Exception):
    """A request body the API refuses with 422; the message names the field."""


@dataclass(frozen=True)
class _NewJob:
    """A valid request to create a job: what it costs and what it will render."""

    name: str | None
    cost: int
    extra: Mapping[str, int]
    """What the create answer adds to ``id`` and ``credits_charged``."""
    outputs: int = 1
    clip: VideoClip | None = None


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
        self._backoff = Backoff(limit=config.max_retry_seconds)
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
        self._unsent = 0
        """Events (one per URL) whose first attempt has not begun: the delivery backlog."""
        urls = len(set(config.webhook_urls))
        # Without a webhook URL there is no backlog, and nothing ever makes room: never held.
        self._backlog_limit = BACKLOG_PER_SENDER * config.delivery_concurrency * urls or math.inf
        self._held: deque[asyncio.Future[bool]] = deque()
        """Job creations waiting for room in the backlog, oldest first."""
        self._admitted = 0
        """Held creations let go whose job is not created yet (see _make_room)."""
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
        pending = {*self._jobs, *self._senders}
        while pending:
            # Again until each has ended: before Python 3.12, asyncio.wait_for (under every
            # delivery's deadline) swallows a cancellation that comes as the exchange ends,
            # and the sender went back to its queue, to wait there for ever (a stop with
            # deliveries under way hung; tests/test_emulate_burst.py).
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.1)
        # Now, when no attempt can end any more: each event counted once, delivered or not.
        self.stats.unfinished = len(self._outgoing)
        for outgoing in self._outgoing:
            if outgoing.retry is not None:
                outgoing.retry.cancel()

    async def run_until_stopped(self, host: str, port: int, on_ready: Callable[[str], None]) -> int:
        """Serve until SIGINT or SIGTERM, then close; ``on_ready`` gets the base URL.

        Returns the exit code (0): stopping is how an emulator is meant to end.
        """
        stop = asyncio.Event()
        # Before starting: a script may stop us the moment it learns we are ready.
        stop_on_signals(stop.set)
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

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        started = time.perf_counter()
        response = self._route(request)
        if not isinstance(response, Response):
            return self._answered_later(request, started, response)
        self._report_call(request, started, response)
        return response

    async def _answered_later(
        self, request: Request, started: float, answer: Awaitable[Response]
    ) -> Response:
        response = await answer
        self._report_call(request, started, response)
        return response

    def _report_call(self, request: Request, started: float, response: Response) -> None:
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

    def _route(self, request: Request) -> Response | Awaitable[Response]:
        path = request.path
        method = request.method
        routes: dict[str, Callable[[Request], Response | Awaitable[Response]]]
        if path == "/v1/account":
            routes = {"GET": self._account}
        elif path in _CREATE_ROUTES:
            routes = {"POST": lambda request: self._create_with_room(path, request)}
        elif match := _PROJECT_PATH.fullmatch(path):
            kind, project_id = match.groups()
            routes = {
                "GET": lambda _: self._get_project(kind, project_id),
                "DELETE": lambda _: self._delete_project(kind, project_id),
            }
        elif match := _DOWNLOAD_PATH.fullmatch(path):
            project_id, number, extension = match.groups()
            if method == "GET":
                return self._download(project_id, int(number or 0), extension)
            return _method_not_allowed(("GET",))
        else:
            return _not_found()
        if method not in routes:
            return _method_not_allowed(tuple(routes))
        refusal = self._authorize(request)
        return refusal if refusal is not None else routes[method](request)

    def _authorize(self, request: Request) -> Response | None:
        """401 ``{"message": "Unauthorized"}``, as the SDKs' error schemas have it, without a
        bearer key or with another than ``api_key``."""
        match = _BEARER.fullmatch(request.header("authorization") or "")
        if match is None:
            return _error(401, ref.ERROR_MESSAGES[401])
        # Constant time: how long a refusal takes says nothing about how much of a key was right.
        key = _key_bytes(match.group(1))
        if self._api_key is not None and not hmac.compare_digest(key, self._api_key):
            return _error(401, ref.ERROR_MESSAGES[401])
        return None

    def _account(self, _: Request) -> Response:
        return _json(
            200,
            {
                "id": self._account_id,
                "email": "developer@example.com",
                "credits": self.credits,
                "tier": self.config.tier,
                "subscription": None,
            },
        )

    def _create_with_room(self, path: str, request: Request) -> Response | Awaitable[Response]:
        """Create at once while the delivery backlog has room; else once it has (see above)."""
        if not self._held and self._unsent < self._backlog_limit:
            return self._create(path, request)
        return self._create_when_room(path, request)

    async def _create_when_room(self, path: str, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        room: asyncio.Future[bool] = loop.create_future()
        self._held.append(room)
        timer = loop.call_later(HOLD_SECONDS, self._stop_holding, room)
        try:
            admitted = await room
        finally:
            timer.cancel()
            if room.cancelled() and room in self._held:  # the emulator is closing
                self._held.remove(room)
        if admitted:
            self._admitted -= 1
        return self._create(path, request)

    def _stop_holding(self, room: asyncio.Future[bool]) -> None:
        """Nothing made room in time: the creation goes ahead anyway."""
        if not room.done():
            self._held.remove(room)
            room.set_result(False)

    def _make_room(self) -> None:
        """Let held creations go, oldest first, while the backlog has room for their events.

        ``_admitted`` counts those let go whose job is not created yet (they resume later):
        without it, one first attempt would let every held creation go.
        """
        while self._held and self._unsent + self._admitted < self._backlog_limit:
            room = self._held.popleft()
            if not room.done():  # else cancelled: the emulator is closing
                room.set_result(True)
                self._admitted += 1

    def _create(self, path: str, request: Request) -> Response:
        kind, project_type, default_name = _CREATE_ROUTES[path]
        paid = self.config.tier != "free"
        try:
            body = _object_body(request)
            if kind == "image":
                job = _image_job(body, self.config.tier)
            elif kind == "audio":
                job = _voice_job(body)
            else:
                job = _video_job(body, paid, from_image=project_type == "IMAGE_TO_VIDEO")
        except _Invalid as invalid:
            return _error(422, str(invalid), code="invalid_request")
        if job.cost > self.credits:
            return _error(
                402,
                f"not enough credits: this job costs {job.cost}, the account has {self.credits}",
            )
        self.credits -= job.cost
        now = datetime.now(timezone.utc)
        project = _Project(
            kind=kind,
            project_type=project_type,
            id=self._new_id(now),
            name=job.name or f"{default_name} - {now:%Y-%m-%d %H:%M:%S}",
            created_at=now,
            cost=job.cost,
            outputs=job.outputs,
            clip=job.clip,
            # Drawn now, with the id, so that a seed decides the same jobs fail every run.
            fails=self._random.random() < self.config.fail_rate,
        )
        self._projects[project.id] = project
        self.stats.jobs += 1
        self._advance(project, "queued")
        task = asyncio.get_running_loop().create_task(self._run_job(project))
        project.job = task
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return _json(200, {"id": project.id, "credits_charged": job.cost, **job.extra})

    def _get_project(self, kind: str, project_id: str) -> Response:
        project = self._projects.get(project_id)
        if project is None or project.kind != kind:
            return _not_found()
        return _json(200, project.payload)

    def _delete_project(self, kind: str, project_id: str) -> Response:
        """204, and the project is gone: its job stops, later reads and downloads are 404."""
        project = self._projects.get(project_id)
        if project is None or project.kind != kind:
            return _not_found()
        del self._projects[project_id]
        if project.job is not None:
            project.job.cancel()
        return Response(204, b"", ())

    def _download(self, project_id: str, number: int, extension: str) -> Response:
        project = self._projects.get(project_id)
        if (
            project is None
            or project.payload["status"] != "complete"
            or _OUTPUTS[project.kind][0] != extension
            # output.png for one output, output-1.png ... output-N.png for N
            or (number == 0) != (project.outputs == 1)
            or number > project.outputs
        ):
            return _not_found()
        content_type = _OUTPUTS[project.kind][1]
        data = {"image": _tiny_png, "audio": _tiny_mp3, "video": _tiny_mp4}[project.kind]()
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
        project.payload = project_payload(
            project.kind,
            project_id=project.id,
            project_type=project.project_type,
            name=project.name,
            status=status,
            created_at=project.created_at,
            now=datetime.now(timezone.utc),
            credits_charged=0 if failed else project.cost,
            error_code=error_code,
            download_urls=self._download_urls(project) if status == "complete" else (),
            image_count=project.outputs,
            clip=project.clip,
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

    def _download_urls(self, project: _Project) -> list[str]:
        base = f"{self.base_url}/downloads/{project.id}/output"
        extension = _OUTPUTS[project.kind][0]
        if project.outputs == 1:
            return [f"{base}.{extension}"]
        return [f"{base}-{number}.{extension}" for number in range(1, project.outputs + 1)]

    # deliveries

    def _send(self, delivery: Delivery, project_id: str) -> None:
        """Queue an event for a URL: O(1) (only a full backlog holds creations, see above)."""
        outgoing = _Outgoing(delivery, project_id)
        self._outgoing.add(outgoing)
        self._unsent += 1
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
            self._unsent -= 1
            self._make_room()
        status, error, latency_ms, timestamp = await self._post(client, outgoing.delivery)
        if outgoing.attempt == 1:
            self._first_attempt_made(outgoing.order_key)
        ok = status is not None and 200 <= status < 300
        # In Magic Hour's time, as the schedule is: real seconds times the speed.
        elapsed = (loop.time() - outgoing.began) * speed
        wait = None if ok else self._backoff.wait_after(outgoing.attempt, elapsed)
        retry = wait is not None
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
            retry_in=None if wait is None else wait / speed,
            gave_up=not ok and not retry,
        )
        if wait is not None:
            # A timer, not a sleeping task: waiting retries cost nothing and hold no sender.
            outgoing.retry = loop.call_later(wait / speed, self._retry_due, outgoing)
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


def _image_job(body: dict[str, Any], tier: str) -> _NewJob:
    """POST /v1/ai-image-generator: the SDK's enums, then the chosen model's rules."""
    image_count = body.get("image_count")
    if image_count is None:
        raise _Invalid("image_count is required")
    if not _is_int(image_count):
        raise _Invalid(f"image_count must be {_counts(ref.IMAGE_MODELS['default'].image_counts)}")
    model = _choice(body, "model", ref.IMAGE_MODEL_VALUES)
    _choice(body, "aspect_ratio", ref.IMAGE_ASPECT_RATIOS)
    _choice(body, "orientation", ref.IMAGE_ORIENTATIONS)
    resolution = _choice(body, "resolution", ref.IMAGE_RESOLUTIONS)
    style = _object(body, "style")
    _non_empty_string(style, "style.prompt")
    _choice(style, "tool", ref.IMAGE_TOOLS, "style.tool")
    quality_mode = _choice(style, "quality_mode", ref.IMAGE_QUALITY_MODES, "style.quality_mode")
    name = _optional_string(body, "name", "name")
    # model wins over the deprecated quality_mode; a deprecated model means its successor.
    chosen = model or (
        ref.IMAGE_QUALITY_MODES[quality_mode] if quality_mode else ref.DEFAULT_IMAGE_MODEL
    )
    rules = ref.IMAGE_MODELS[ref.DEPRECATED_IMAGE_MODELS.get(chosen, chosen)]
    with_model = f" with model {chosen}" if chosen != ref.DEFAULT_IMAGE_MODEL else ""
    if image_count not in rules.image_counts:
        raise _Invalid(f"image_count must be {_counts(rules.image_counts)}{with_model}")
    if resolution not in (None, "auto") and resolution not in rules.resolutions:
        raise _Invalid(f"resolution must be one of {', '.join(rules.resolutions)}{with_model}")
    if tier not in rules.tiers:
        raise _Invalid(
            f"model {chosen} is for the {', '.join(rules.tiers)} tiers; this account is {tier}"
        )
    cost = ref.image_credits(chosen, image_count)
    return _NewJob(name, cost, {"frame_cost": cost}, outputs=image_count)


def _voice_job(body: dict[str, Any]) -> _NewJob:
    """POST /v1/ai-voice-generator: a prompt within the limit and a voice the API lists."""
    style = _object(body, "style")
    prompt = _non_empty_string(style, "style.prompt")
    if len(prompt) > ref.MAX_VOICE_PROMPT:
        raise _Invalid(
            f"style.prompt must be at most {ref.MAX_VOICE_PROMPT} characters (it has {len(prompt)})"
        )
    voice = _non_empty_string(style, "style.voice_name")
    if voice not in ref.voice_names():
        raise _Invalid(
            f"style.voice_name must be one of the API's {len(ref.voice_names()):,} voices "
            "(such as Elon Musk; the SDKs list them all)"
        )
    name = _optional_string(body, "name", "name")
    return _NewJob(name, ref.voice_credits(prompt), {})


def _video_job(body: dict[str, Any], paid: bool, *, from_image: bool) -> _NewJob:
    """POST /v1/text-to-video or /v1/image-to-video: the SDK's enums, then the model's rules.

    What the request leaves out is what the docs say it defaults to on this tier: the model
    (``default``), the resolution (or what a deprecated quality setting stands for).
    """
    end_seconds = body.get("end_seconds")
    if end_seconds is None:
        raise _Invalid("end_seconds is required")
    if (
        not isinstance(end_seconds, (int, float))
        or isinstance(end_seconds, bool)
        or not 0 < end_seconds <= MAX_VIDEO_SECONDS
    ):
        raise _Invalid(
            f"end_seconds must be a number of seconds above 0, {MAX_VIDEO_SECONDS} at most"
        )
    model = _choice(body, "model", ref.VIDEO_MODEL_VALUES)
    resolution = _choice(body, "resolution", ref.VIDEO_RESOLUTIONS)
    audio = body.get("audio")
    if audio is not None and not isinstance(audio, bool):
        raise _Invalid("audio must be true or false")
    name = _optional_string(body, "name", "name")
    aspect_ratio = None
    if from_image:
        assets = _object(body, "assets")
        _non_empty_string(assets, "assets.image_file_path")
        _optional_string(assets, "assets.end_image_file_path", "end_image_file_path")
        style = _object(body, "style", required=False)
        _optional_string(style, "style.prompt", "prompt")
        high_quality = style.get("high_quality")
        if high_quality is not None and not isinstance(high_quality, bool):
            raise _Invalid("style.high_quality must be true or false")
        legacy = None if high_quality is None else ref.HIGH_QUALITY_RESOLUTIONS[high_quality]
        for key in ("width", "height"):  # deprecated, ignored
            if body.get(key) is not None and not _is_int(body[key]):
                raise _Invalid(f"{key} must be an integer")
    else:
        aspect_ratio = _choice(body, "aspect_ratio", ref.VIDEO_ASPECT_RATIOS)
        orientation = _choice(body, "orientation", ref.VIDEO_ORIENTATIONS)
        aspect_ratio = aspect_ratio or (orientation and _ORIENTATION_RATIOS[orientation])
        style = _object(body, "style")
        _non_empty_string(style, "style.prompt")
        references = body.get("references")
        if references is not None and (
            not isinstance(references, list) or len(references) > ref.MAX_VIDEO_REFERENCES
        ):
            raise _Invalid(f"references must be a list of at most {ref.MAX_VIDEO_REFERENCES}")
        legacy = None
    quality_mode = _choice(style, "quality_mode", ref.VIDEO_QUALITY_MODES, "style.quality_mode")
    chosen = ref.DEFAULT_VIDEO_MODEL[paid] if model in (None, "default") else model
    rules = ref.VIDEO_MODELS.get(chosen)
    requested = resolution or (quality_mode and ref.VIDEO_QUALITY_MODES[quality_mode]) or legacy
    resolution = requested or ref.DEFAULT_VIDEO_RESOLUTION[paid]
    if rules is not None:
        if requested is None and resolution not in rules.resolutions:
            resolution = rules.resolutions[0]  # the tier's default is not this model's
        if resolution not in rules.resolutions:
            raise _Invalid(
                f"resolution must be one of {', '.join(rules.resolutions)} with model {chosen}"
            )
        if end_seconds not in rules.durations:
            raise _Invalid(f"end_seconds must be {_counts(rules.durations)} with model {chosen}")
        if aspect_ratio is not None and aspect_ratio not in rules.aspect_ratios:
            raise _Invalid(
                f"aspect_ratio must be one of {', '.join(rules.aspect_ratios)} with model {chosen}"
            )
        if audio and not rules.audio:
            raise _Invalid(f"model {chosen} makes no audio: leave audio out or false")
    width, height = ref.video_size(resolution, aspect_ratio or "16:9")
    cost = ref.video_credits(resolution, end_seconds)
    clip = VideoClip(width, height, end_seconds, ref.VIDEO_FPS[resolution])
    return _NewJob(name, cost, {"estimated_frame_cost": cost}, clip=clip)


def _object(container: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    value = container.get(key)
    if value is None:
        if required:
            raise _Invalid(f"{key} is required")
        return {}
    if not isinstance(value, dict):
        raise _Invalid(f"{key} must be an object")
    return value


def _non_empty_string(container: dict[str, Any], path: str) -> str:
    value = container.get(path.rpartition(".")[2])
    if value is None:
        raise _Invalid(f"{path} is required")
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"{path} must be a non-empty string")
    return value


def _optional_string(container: dict[str, Any], path: str, key: str) -> str | None:
    # A null counts as absent: SDKs send it for options left unset.
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise _Invalid(f"{path} must be a string")
    return value


def _choice(
    container: dict[str, Any], key: str, values: Collection[str], path: str | None = None
) -> str | None:
    """An optional enum field: one of ``values`` (the SDK's list) or absent (null)."""
    value = container.get(key)
    # A string first: a list or an object is no member, and no key of a mapping to look up.
    if value is not None and (not isinstance(value, str) or value not in values):
        raise _Invalid(f"{path or key} must be one of {', '.join(values)}")
    return value


def _counts(allowed: tuple[int, ...]) -> str:
    """``1``, ``an integer from 1 to 4`` or ``one of 1, 4, 9, 16``: how a message says it."""
    if len(allowed) == 1:
        return str(allowed[0])
    if allowed == tuple(range(allowed[0], allowed[-1] + 1)):
        return f"an integer from {allowed[0]} to {allowed[-1]}"
    return "one of " + ", ".join(map(str, allowed))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# responses


def _json(status: int, data: Any) -> Response:
    return Response(status, serialize(data), _JSON_HEADERS)


def _error(status: int, message: str, *, code: str | None = None) -> Response:
    return _json(status, {"code": code, "message": message} if code else {"message": message})


def _not_found() -> Response:
    """404 ``{"message": "Not Found"}``, as the SDKs' error schemas have it."""
    return _error(404, ref.ERROR_MESSAGES[404])


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


@cache
def _tiny_mp4() -> bytes:
    """An MP4 with no tracks: a file type box and a movie header of zero length.

    Players and ``ffprobe`` open it as an empty movie; a client that only saves it gets a file
    of the right type without the emulator shipping a real clip.
    """

    def box(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", 8 + len(data)) + kind + data

    file_type = box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    header = (
        bytes(4)  # version 0, no flags
        + struct.pack(">IIII", 0, 0, 1000, 0)  # created, modified, timescale, duration
        + struct.pack(">IH", 0x10000, 0x100)  # rate 1.0, volume 1.0
        + bytes(10)
        + identity
        + bytes(24)
        + struct.pack(">I", 1)  # next track id
    )
    return file_type + box(b"moov", box(b"mvhd", header))
