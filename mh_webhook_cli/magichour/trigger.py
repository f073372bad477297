"""``mhw trigger``: start a real job and prove that its webhooks reach you, end to end.

Two clocks feed one check. The API, polled every couple of seconds, says what Magic Hour
thinks the job is doing; the webhooks that arrive (at our own listener, or in the store of
an ``mhw listen`` already running) say what reached you. The check ends when the job's
final event (``image.completed``, or ``image.errored``) has arrived, when the job finished
but its webhook did not follow within ``webhook_timeout``, or at ``timeout``. Its verdict
names which link of the chain broke, because "no webhook arrived" has several causes with
different fixes: a URL registered wrong, an endpoint that does not list the event, a
secret copied from the wrong endpoint.

Every arrival is verified here, with this command's own secrets and as of when it arrived,
whichever listener received it: a listener started without a secret still gives a verdict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from mh_webhook_cli.core.settings import mask
from mh_webhook_cli.core.signing import Reason, verify
from mh_webhook_cli.errors import ExitCode
from mh_webhook_cli.magichour.api import ApiError, CreatedJob, JobKind, MagicHourApi

TERMINAL_STATUSES = ("complete", "error", "canceled")
"""Statuses after which a job changes no more."""
_CATCH_UP_POLLS = 3
_CATCH_UP_INTERVAL = 0.5


class Verdict(str, Enum):
    """How an end-to-end check ended; each has its own exit code."""

    OK = "ok"
    API_ERROR = "api_error"
    JOB_FAILED = "job_failed"
    NO_WEBHOOK = "no_webhook"
    BAD_SIGNATURE = "bad_signature"
    JOB_TIMEOUT = "job_timeout"
    MISMATCH = "mismatch"
    """The webhook arrived, genuine, but disagrees with the API (or with ``--expect-error``)."""

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Verdict.OK: ExitCode.OK,
    Verdict.API_ERROR: ExitCode.API_ERROR,
    Verdict.JOB_FAILED: ExitCode.JOB_FAILED,
    Verdict.NO_WEBHOOK: ExitCode.NO_WEBHOOK,
    Verdict.BAD_SIGNATURE: ExitCode.BAD_SIGNATURE,
    Verdict.JOB_TIMEOUT: ExitCode.JOB_TIMEOUT,
    Verdict.MISMATCH: ExitCode.FAILED,
}


@dataclass(frozen=True)
class Arrival:
    """A request that reached the listener, whichever listener that was."""

    received_at: float
    """Unix seconds."""
    body: bytes
    headers: Sequence[tuple[str, str]]
    """As received, repeats kept: a repeated signature header is judged ambiguous."""
    event_type: str | None
    project_id: str | None
    document: Any
    """The body parsed as JSON, or None."""


@dataclass(frozen=True)
class Step:
    """One line of the timeline."""

    at: float
    """Seconds since the request that created the job was sent."""
    source: Literal["api", "webhook"]
    what: str
    """``created``, an API status (``rendering``), or an event type (``image.started``)."""
    detail: str = ""
    verification: str | None = None
    """For a webhook: ``ok`` or why its signature failed."""


@dataclass(frozen=True)
class TriggerPlan:
    """What to create and how long to wait for it."""

    kind: JobKind
    text: str
    """The image prompt, or the words to speak."""
    secrets: tuple[str, ...]
    voice: str | None = None
    expect_error: bool = False
    timeout: float = 300.0
    """The job must finish within this many seconds of its creation."""
    webhook_timeout: float = 60.0
    """Once the API says the job finished, how long its webhook may take to arrive."""
    poll_interval: float = 2.0
    endpoint: str = ""
    """Where webhooks should arrive (the URL to register), for the diagnosis."""


@dataclass
class TriggerResult:
    verdict: Verdict
    diagnosis: str
    """One line: what happened and, when it failed, what to do."""
    job: CreatedJob | None = None
    timeline: list[Step] = field(default_factory=list)
    project: dict[str, Any] | None = None
    """The API's last view of the project."""
    final_event: Arrival | None = None
    other_requests: int = 0
    """Requests that reached the listener but were not about this job."""
    downloads: list[Path] = field(default_factory=list)


class Inbox:
    """Arrivals from a listener, in order, for the check to wait on."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Arrival] = asyncio.Queue()

    def put(self, arrival: Arrival) -> None:
        self._queue.put_nowait(arrival)

    async def next(self, timeout: float) -> Arrival | None:
        try:
            return await asyncio.wait_for(self._queue.get(), max(timeout, 0.0))
        except asyncio.TimeoutError:
            return None


class _Check:
    """The state of one run: what the API and the webhooks have said so far."""

    def __init__(self, plan: TriggerPlan, on_step: Callable[[Step], None]) -> None:
        self.plan = plan
        self.on_step = on_step
        self.started = time.monotonic()
        self.job: CreatedJob | None = None
        self.project: dict[str, Any] | None = None
        self.finished_at: float | None = None
        """Monotonic time when the API first reported a final status."""
        self.final_event: Arrival | None = None
        self.final_verification: str | None = None
        self.final_hints: list[str] = []
        self.seen_events: list[str] = []
        self.other_requests = 0
        self.poll_failure: ApiError | None = None
        self.timeline: list[Step] = []

    def step(
        self, source: Literal["api", "webhook"], what: str, detail: str = "", **extra: Any
    ) -> None:
        step = Step(round(time.monotonic() - self.started, 3), source, what, detail, **extra)
        self.timeline.append(step)
        self.on_step(step)

    @property
    def final_type(self) -> str:
        assert self.job is not None
        return f"{self.job.kind}.{'errored' if self.plan.expect_error else 'completed'}"

    def polled(self, project: dict[str, Any]) -> None:
        status = str(project.get("status"))
        if self.project is None or self.project.get("status") != status:
            error = project.get("error")
            detail = _error_text(error) if isinstance(error, dict) else ""
            self.step("api", status, detail)
        self.project = project
        if status in TERMINAL_STATUSES and self.finished_at is None:
            self.finished_at = time.monotonic()

    def arrived(self, arrival: Arrival) -> None:
        assert self.job is not None
        if arrival.project_id != self.job.id:
            self.other_requests += 1
            return
        result = verify(
            arrival.body, arrival.headers, list(self.plan.secrets), now=arrival.received_at
        )
        event_type = arrival.event_type or "(no type)"
        self.seen_events.append(event_type)
        self.step("webhook", event_type, verification=result.reason.value)
        final = event_type.endswith((".completed", ".errored"))
        if final and self.final_event is None:
            self.final_event = arrival
            self.final_verification = result.reason.value
            # "Wrong secret" is what the verdict says anyway; other hints name a real mistake.
            self.final_hints = [h.message for h in result.hints if h.code != "wrong_secret"]


async def run_trigger(
    plan: TriggerPlan,
    api: MagicHourApi,
    inbox: Inbox,
    *,
    on_step: Callable[[Step], None],
    download_to: Path | None = None,
) -> TriggerResult:
    """Create the job, follow it through the API and the webhooks, and judge the outcome."""
    check = _Check(plan, on_step)
    try:
        check.job = await _create(api, plan)
    except ApiError as failure:
        return TriggerResult(Verdict.API_ERROR, str(failure), timeline=check.timeline)
    credits = check.job.credits_charged
    check.step("api", "created", f"{check.job.id}" + (f", {credits} credits" if credits else ""))

    loop = asyncio.get_running_loop()
    deadline = check.started + plan.timeout
    next_poll = loop.time()
    while check.final_event is None:
        now = time.monotonic()
        if now >= deadline:
            break
        if check.finished_at is not None and now >= check.finished_at + plan.webhook_timeout:
            break
        if loop.time() >= next_poll:
            await _poll(api, check)
            next_poll = loop.time() + plan.poll_interval
        wake = min(deadline - time.monotonic(), next_poll - loop.time())
        if check.finished_at is not None:
            wake = min(wake, check.finished_at + plan.webhook_timeout - time.monotonic())
        arrival = await inbox.next(wake)
        if arrival is not None:
            check.arrived(arrival)
    for _ in range(_CATCH_UP_POLLS):
        if check.final_event is None or (
            check.project is not None and check.project.get("status") in TERMINAL_STATUSES
        ):
            break
        # The webhook beat the poll: ask again, to compare it with the API's own view
        # (a few times, in case the API's answer lags behind the event).
        await _poll(api, check)
        if check.project is None or check.project.get("status") not in TERMINAL_STATUSES:
            await asyncio.sleep(_CATCH_UP_INTERVAL)
    result = _judge(check)
    if result.verdict is Verdict.OK and download_to is not None and check.project is not None:
        result.downloads = await _download(api, check.project, download_to)
    return result


async def _create(api: MagicHourApi, plan: TriggerPlan) -> CreatedJob:
    if plan.kind == "image":
        return await api.create_image(plan.text)
    if plan.voice is not None:
        return await api.create_audio(plan.text, voice=plan.voice)
    return await api.create_audio(plan.text)


async def _poll(api: MagicHourApi, check: _Check) -> None:
    assert check.job is not None
    try:
        check.polled(await api.project(check.job.kind, check.job.id))
        check.poll_failure = None
    except ApiError as failure:
        if check.poll_failure is None:  # once per outage, not every two seconds
            check.step("api", "poll failed", str(failure))
        check.poll_failure = failure


async def _download(api: MagicHourApi, project: Mapping[str, Any], directory: Path) -> list[Path]:
    saved = []
    for item in project.get("downloads") or []:
        url = item.get("url") if isinstance(item, dict) else None
        if isinstance(url, str):
            saved.append(await api.download(url, directory, project_id=str(project.get("id"))))
    return saved


def _judge(check: _Check) -> TriggerResult:
    verdict, diagnosis = _verdict(check)
    return TriggerResult(
        verdict,
        diagnosis,
        job=check.job,
        timeline=check.timeline,
        project=check.project,
        final_event=check.final_event,
        other_requests=check.other_requests,
    )


def _verdict(check: _Check) -> tuple[Verdict, str]:
    assert check.job is not None
    plan, job = check.plan, check.job
    status = check.project.get("status") if check.project else None
    error = check.project.get("error") if check.project else None
    failed_with = _error_text(error) if isinstance(error, dict) else "no error given"
    arrival = check.final_event
    if arrival is None:
        if status not in TERMINAL_STATUSES:
            if check.poll_failure is not None:
                return Verdict.API_ERROR, str(check.poll_failure)
            return Verdict.JOB_TIMEOUT, (
                f"the job was still {status or 'unknown'} after {plan.timeout:g} s "
                "(raise --timeout; long queues happen at busy times)"
            )
        if status == "error" and not plan.expect_error:
            return Verdict.JOB_FAILED, (
                f"the job failed ({failed_with}) and no {job.kind}.errored webhook arrived "
                f"either: {_missing_webhook_advice(check, f'{job.kind}.errored')}"
            )
        return Verdict.NO_WEBHOOK, (
            f"the job is {status} but no {_wanted(check, status)} webhook arrived within "
            f"{plan.webhook_timeout:g} s: {_missing_webhook_advice(check, _wanted(check, status))}"
        )
    event_type = arrival.event_type or ""
    if check.final_verification != Reason.OK.value:
        hints = f" ({'; '.join(check.final_hints)})" if check.final_hints else ""
        return Verdict.BAD_SIGNATURE, (
            f"{event_type} arrived but its signature does not verify with "
            f"{', '.join(mask(secret) for secret in plan.secrets)}: "
            f"{check.final_verification}{hints}; the webhook secret is probably wrong: copy the "
            "signing secret of this endpoint from the Developer Hub"
        )
    if event_type.endswith(".errored") and not plan.expect_error:
        return (
            Verdict.JOB_FAILED,
            f"the job failed ({failed_with}); its {event_type} webhook arrived, signed",
        )
    if event_type.endswith(".completed") and plan.expect_error:
        return Verdict.MISMATCH, f"expected the job to fail, but {event_type} arrived"
    differences = _differences(arrival.document, check.project)
    if differences:
        return Verdict.MISMATCH, (
            f"{event_type} arrived, signed, but its payload disagrees with "
            f"GET /v1/{job.kind}-projects/{job.id}: {'; '.join(differences)}"
        )
    return Verdict.OK, f"{event_type} arrived, signed, and matches the API's view of the job"


def _wanted(check: _Check, status: str | None) -> str:
    assert check.job is not None
    return f"{check.job.kind}.{'errored' if status == 'error' else 'completed'}"


def _missing_webhook_advice(check: _Check, wanted: str) -> str:
    """Which link is likely broken, from what did arrive."""
    endpoint = check.plan.endpoint or "your endpoint"
    if check.seen_events:
        return (
            f"{', '.join(dict.fromkeys(check.seen_events))} arrived, so the URL is right: add "
            f"{wanted} to the events of the Developer Hub endpoint"
        )
    if check.other_requests:
        return (
            f"{check.other_requests} request(s) about other projects reached {endpoint}, none "
            f"about this one: is the endpoint registered under another account or API key?"
        )
    return (
        f"nothing reached {endpoint}: check that a Developer Hub endpoint has exactly this URL, "
        f"is enabled and lists {wanted} (an ngrok URL changes every run unless you use --domain)"
    )


_COMPARED_FIELDS = ("id", "status", "type")


def _differences(document: Any, project: Mapping[str, Any] | None) -> list[str]:
    """Where the webhook's payload disagrees with the API's project (stable fields only:
    download URLs may be signed afresh for every answer)."""
    payload = document.get("payload") if isinstance(document, dict) else None
    if not isinstance(payload, dict) or project is None:
        return [] if project is None else ["the webhook has no payload object"]
    differences = [
        f"{name} {payload.get(name)!r} vs {project.get(name)!r}"
        for name in _COMPARED_FIELDS
        if payload.get(name) != project.get(name)
    ]
    webhook_error, api_error = payload.get("error"), project.get("error")
    if _error_code(webhook_error) != _error_code(api_error):
        differences.append(f"error {_error_code(webhook_error)!r} vs {_error_code(api_error)!r}")
    webhook_downloads = payload.get("downloads") or []
    api_downloads = project.get("downloads") or []
    if len(webhook_downloads) != len(api_downloads):
        differences.append(f"{len(webhook_downloads)} download(s) vs {len(api_downloads)}")
    return differences


def _error_code(error: Any) -> Any:
    return error.get("code") if isinstance(error, dict) else error


def _error_text(error: Mapping[str, Any]) -> str:
    code, message = error.get("code"), error.get("message")
    return ": ".join(str(part) for part in (code, message) if part) or "no error given"


async def poll_store(store_path: Path, since: float, inbox: Inbox, interval: float = 0.25) -> None:
    """Feed ``inbox`` with the requests a running ``mhw listen`` stores from ``since`` on.

    The listener commits each request before answering it, so the store sees every
    delivery that the sender saw acknowledged.
    """
    from mh_webhook_cli.core.catalog import parse_body
    from mh_webhook_cli.receive.store import Store

    seen: set[int] = set()
    with Store(store_path) as store:
        while True:
            for stored in store.requests(since=since, oldest_first=True):
                if stored.id in seen:
                    continue
                seen.add(stored.id)
                inbox.put(
                    Arrival(
                        stored.received_at,
                        stored.body,
                        stored.headers,
                        stored.event_type,
                        stored.project_id,
                        parse_body(stored.body)[0],
                    )
                )
            await asyncio.sleep(interval)
