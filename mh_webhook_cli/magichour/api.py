"""The Magic Hour API, as much of it as mhw needs: check a key, start a cheap job, follow it.

The client is asynchronous because ``mhw trigger`` runs it on the same event loop
as a listener waiting for the job's webhooks; ``mhw doctor`` simply ``asyncio.run``\\ s
one call.

Every failure is an :class:`ApiError` whose message is one line saying what to do,
with the API key masked. Retries follow one rule: a request is repeated only when
repeating it cannot do harm. A rate-limited request (429) was refused, so it is
safe to retry whatever it was. A server error or a lost connection on a GET is
retried with backoff; on a POST that creates a job it is not, because the job may
have been accepted and a second one would spend the credits twice.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal
from urllib.parse import quote, unquote, urlsplit

import httpx

from mh_webhook_cli.core.settings import mask, redact
from mh_webhook_cli.errors import ApiError, DeadlineExceeded, UsageError
from mh_webhook_cli.magichour import api_reference
from mh_webhook_cli.magichour.api_reference import DEFAULT_API_BASE, KEYS_URL
from mh_webhook_cli.send.client import READ_LIMIT, USER_AGENT, Answer, BodySink, describe_failure
from mh_webhook_cli.send.client import request as bounded_request
from mh_webhook_cli.send.retry import Backoff

DEFAULT_IMAGE_TOOL = "general"
"""The API's own default art style; mhw names it so that the request says what it asks for."""
DEFAULT_VOICE = "Elon Musk"
"""The voice of Magic Hour's own examples."""
IMAGE_CREDITS = api_reference.IMAGE_MODELS["default"].credits_per_image
"""Credits one AI image costs."""
AUDIO_CHARACTERS_PER_CREDIT = api_reference.VOICE_CHARACTERS_PER_CREDIT
"""The voice generator costs 0.1 credit per character, rounded up."""
VIDEO_MODEL, VIDEO_RESOLUTION, VIDEO_SECONDS = "ltx-2.5", "480p", 1
"""The cheapest text-to-video the API documents: the shortest clip of its lowest resolution."""
DASHBOARD_HINT = "it may have started: check your Magic Hour dashboard before retrying"
TLS_FIX = "behind a proxy? point SSL_CERT_FILE at its CA bundle"
DOWNLOAD_LIMIT = 4 * 1024**3
"""The largest file downloaded: far above a rendered video, far below a full disk."""
DOWNLOAD_DEADLINE_SECONDS = 30 * 60.0
"""The time a download may take: a large video over a slow link, but not forever."""
MAX_REDIRECTS = 10

JobKind = Literal["image", "audio", "video"]
ProjectKind = Literal["video", "image", "audio"]


@dataclass(frozen=True)
class CreatedJob:
    """A job Magic Hour accepted: its webhooks will carry this id."""

    kind: JobKind
    id: str
    credits_charged: int | None


def estimate_credits(kind: JobKind, text: str, image_count: int = 1) -> int:
    """What a job will cost, so that a command can say so before spending anything.

    Integer arithmetic on purpose: ``ceil(0.1 * 30)`` is 4 in floating point.
    """
    if kind == "image":
        return IMAGE_CREDITS * image_count
    if kind == "video":
        return api_reference.video_credits(VIDEO_RESOLUTION, VIDEO_SECONDS)
    return -(-len(text) // AUDIO_CHARACTERS_PER_CREDIT)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """How long a ``Retry-After`` header asks to wait: seconds or an HTTP-date; None if neither.

    A date in the past means "now" (0), and so does a negative number.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - (now or datetime.now(timezone.utc))).total_seconds())


class MagicHourApi:
    """A client for one API key and base URL; use it as ``async with MagicHourApi(...) as api``.

    ``timeout`` bounds each API request as a whole (connect, send, the entire answer).
    ``backoff`` is the first wait between retries, doubled each time (Magic Hour's own
    schedule, :class:`~mh_webhook_cli.send.retry.Backoff`), for ``retries`` retries at most;
    tests shrink it. ``max_retry_wait`` bounds every wait: a server asking for longer fails
    at once, since waiting less than it asked would only be refused again.

    Downloads are different: a real output may be a large video on a slow link, so one
    is streamed to its file with ``timeout`` as the longest silence between two reads,
    ``download_deadline`` for the whole transfer and ``download_limit`` bytes at most.
    Memory stays flat however long it runs; the limits bound the time and the disk.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_API_BASE,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 60.0,
        backoff: float = 1.0,
        download_limit: int = DOWNLOAD_LIMIT,
        download_deadline: float = DOWNLOAD_DEADLINE_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retry_wait = max_retry_wait
        self.schedule = Backoff(
            first=backoff, limit=math.inf, cap=max_retry_wait, attempts=retries + 1
        )
        self.download_limit = download_limit
        self.download_deadline = download_deadline
        # The key goes with API requests only (see _request): download links are other hosts.
        self._authorization = {"Authorization": f"Bearer {api_key}"}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
        )

    async def __aenter__(self) -> MagicHourApi:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def account(self) -> dict[str, Any]:
        """The key's account (``id``, ``email``, ``credits``, ``tier``...); free to call."""
        return _object(await self._request("GET", "/v1/account", "check the API key"), "account")

    async def create_image(
        self,
        prompt: str,
        *,
        tool: str = DEFAULT_IMAGE_TOOL,
        aspect_ratio: str = "1:1",
        name: str | None = None,
    ) -> CreatedJob:
        """Start one AI image (``IMAGE_CREDITS`` credits); not retried once it may have landed."""
        body: dict[str, Any] = {
            "image_count": 1,
            "aspect_ratio": aspect_ratio,
            "style": {"prompt": prompt, "tool": tool},
        }
        if name is not None:
            body["name"] = name
        answer = await self._request("POST", "/v1/ai-image-generator", "start an image job", body)
        return _created("image", answer)

    async def create_audio(
        self, text: str, *, voice: str = DEFAULT_VOICE, name: str | None = None
    ) -> CreatedJob:
        """Start a voice generation (see :func:`estimate_credits`); not retried once it may
        have landed."""
        body: dict[str, Any] = {"style": {"prompt": text, "voice_name": voice}}
        if name is not None:
            body["name"] = name
        answer = await self._request("POST", "/v1/ai-voice-generator", "start an audio job", body)
        return _created("audio", answer)

    async def create_video(self, prompt: str, *, name: str | None = None) -> CreatedJob:
        """Start the cheapest text-to-video (see :func:`estimate_credits`); not retried once
        it may have landed."""
        body: dict[str, Any] = {
            "end_seconds": VIDEO_SECONDS,
            "model": VIDEO_MODEL,
            "resolution": VIDEO_RESOLUTION,
            "style": {"prompt": prompt},
        }
        if name is not None:
            body["name"] = name
        answer = await self._request("POST", "/v1/text-to-video", "start a video job", body)
        return _created("video", answer)

    async def project(self, kind: ProjectKind, project_id: str) -> dict[str, Any]:
        """A project as ``GET /v1/{kind}-projects/{id}`` returns it: the same dict as a
        webhook's ``payload``."""
        path = f"/v1/{kind}-projects/{quote(project_id, safe='')}"
        answer = await self._request(
            "GET", path, f"read {kind} project {project_id}", missing=f"{kind} project {project_id}"
        )
        return _object(answer, f"{kind} project")

    async def download(self, url: str, directory: Path, *, project_id: str | None = None) -> Path:
        """Stream ``url`` into ``directory``; the new file's path.

        The file is named after the URL's last path segment, prefixed with
        ``project_id`` when the name does not already hold it (Magic Hour's
        outputs have generic names), and gets a ``-1``, ``-2``... suffix rather
        than replace a file already there. A failed download leaves nothing behind.
        The API key is not sent: download links are signed URLs on other hosts.
        Redirects are followed here, hop by hop, so that each hop is bounded too.
        """
        shown = _without_query(url)
        name = _file_name(url, project_id)
        files: list[tuple[Path, BinaryIO]] = []

        def save(response: httpx.Response) -> BodySink | None:
            """Where the body goes: a new file when this answer is the download itself."""
            if not response.is_success:
                return None
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.download_limit:
                raise self._too_large(shown)
            try:
                directory.mkdir(parents=True, exist_ok=True)
                path, handle = _new_file(directory, name)
            except OSError as failure:
                raise UsageError(
                    f"cannot save downloads in {directory}: {failure.strerror or failure}"
                ) from None
            files.append((path, handle))
            written = 0

            def write(chunk: bytes) -> None:
                nonlocal written
                written += len(chunk)
                if written > self.download_limit:
                    raise self._too_large(shown)
                try:
                    handle.write(chunk)
                except OSError as failure:
                    raise UsageError(f"cannot write {path}: {failure.strerror}") from None

            return write

        ends = time.monotonic() + self.download_deadline
        try:
            for _ in range(MAX_REDIRECTS + 1):
                answer = await bounded_request(
                    self._client,
                    "GET",
                    url,
                    deadline=max(0.0, ends - time.monotonic()),
                    keep=0,
                    idle_timeout=self.timeout,
                    sink=save,
                )
                location = answer.header("location")
                if not 300 <= answer.status < 400 or location is None:
                    break
                url = str(httpx.URL(url).join(location))
            else:
                raise ApiError(f"cannot download {shown}: more than {MAX_REDIRECTS} redirects")
        except BaseException as failure:
            for path, handle in files:
                handle.close()
                path.unlink(missing_ok=True)
            if isinstance(failure, DeadlineExceeded):  # say the whole download's deadline
                failure = DeadlineExceeded(self.download_deadline, failure.phase)
            if isinstance(failure, (httpx.HTTPError, DeadlineExceeded)):
                raise ApiError(f"cannot download {shown}: {self._describe(failure)}") from None
            raise
        if not files:
            raise ApiError(
                f"cannot download {shown} ({answer.status}): download links expire; "
                "read the project again for a fresh one",
                status=answer.status,
            )
        path, handle = files[0]
        handle.close()
        return path

    def _too_large(self, shown: str) -> ApiError:
        return ApiError(f"cannot download {shown}: larger than {self.download_limit} bytes")

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        body: dict[str, Any] | None = None,
        *,
        missing: str | None = None,
    ) -> Any:
        """Send one request, retrying only where that is safe; the decoded JSON answer.

        ``what`` completes "to ..." in messages; ``missing`` names what a 404 means.
        """
        idempotent = method == "GET"
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = await bounded_request(
                    self._client,
                    method,
                    path,
                    json=body,
                    headers=self._authorization,
                    deadline=self.timeout,
                    keep=READ_LIMIT,  # all of it: a project or an account is a few KiB of JSON
                )
            except (httpx.TransportError, DeadlineExceeded) as failure:
                transient = not isinstance(failure, httpx.ConnectError)
                wait = self.schedule.wait_after(attempt, 0.0)
                if idempotent and transient and wait is not None:
                    await asyncio.sleep(wait)
                    continue
                raise self._network_error(failure, method, what, attempt) from None
            status = answer.status
            wait = self.schedule.wait_after(attempt, 0.0)
            # 429: refused, so safe to repeat; 5xx: maybe done, so only if repeating is harmless.
            if (status == 429 or (status >= 500 and idempotent)) and wait is not None:
                asked = retry_after_seconds(answer.header("retry-after"))
                if asked is not None and asked > self.max_retry_wait:
                    raise self._status_error(answer, method, what, attempt, missing, asked)
                await asyncio.sleep(wait if asked is None else asked)
                continue
            if not 200 <= status < 300:
                raise self._status_error(answer, method, what, attempt, missing)
            if not answer.complete:
                raise ApiError(
                    f"the answer to {method} {self.base_url}{path} (to {what}) is larger than "
                    f"{READ_LIMIT} bytes: is {self.base_url} the Magic Hour API?",
                    status=status,
                )
            return self._decode(answer, method, path, what)

    def _decode(self, answer: Answer, method: str, path: str, what: str) -> Any:
        try:
            return json.loads(answer.body)
        except (ValueError, RecursionError):
            kind = answer.header("content-type") or "no content type"
            start = _one_line(_text(answer), 60) or "an empty body"
            raise ApiError(
                f"the answer to {method} {self.base_url}{path} (to {what}) is not JSON "
                f"({answer.status}, {kind}: {start}): is {self.base_url} "
                "the Magic Hour API?",
                status=answer.status,
            ) from None

    def _status_error(
        self,
        answer: Answer,
        method: str,
        what: str,
        attempts: int,
        missing: str | None,
        asked_wait: float | None = None,
    ) -> ApiError:
        """The one line for a refusal: what Magic Hour said, and what to do about it."""
        status = answer.status
        code, api_message = _error_detail(answer)
        said = f"{status}{f' {code}' if code else ''}{f': {api_message}' if api_message else ''}"
        if status == 401:
            message = (
                f"Magic Hour rejected the API key {mask(self.api_key)} ({said}): check "
                f"--api-key, MAGIC_HOUR_API_KEY or 'mhw config set api_key' (keys: {KEYS_URL})"
            )
        elif status == 402:
            message = (
                f"not enough Magic Hour credits to {what} ({said}): add credits to this key's "
                "account, then try again"
            )
        elif status == 403:
            message = (
                f"Magic Hour does not allow this key to {what} ({said}): check the account's plan "
                "and the key's permissions in the Developer Hub"
            )
        elif status == 404 and missing is not None:
            message = (
                f"Magic Hour has no {missing} ({said}): check the id, and that the project "
                "belongs to this API key's account"
            )
        elif status == 404:
            message = f"Magic Hour does not know how to {what} ({said}): is {self.base_url} right?"
        elif status == 422:
            message = f"Magic Hour rejected the request to {what} ({said}): fix what it names"
        elif status == 429 and asked_wait is not None:
            message = (
                f"Magic Hour is rate limiting the requests to {what} ({said}) and asks to wait "
                f"{asked_wait:g} s: try again then"
            )
        elif status == 429:
            message = (
                f"Magic Hour rate limited the requests to {what} ({said}), {attempts} times: "
                "wait a minute and try again"
            )
        elif status >= 500 and method != "GET":
            message = f"Magic Hour failed to {what} ({said}); {DASHBOARD_HINT}"
        elif status >= 500:
            tries = f", {attempts} times" if attempts > 1 else ""
            message = f"Magic Hour failed to {what} ({said}){tries}: try again later"
        else:
            message = f"Magic Hour refused to {what} ({said})"
        return ApiError(message, status=status, code=code, api_message=api_message)

    def _network_error(
        self,
        failure: httpx.TransportError | DeadlineExceeded,
        method: str,
        what: str,
        attempts: int,
    ) -> ApiError:
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        message = f"cannot reach the Magic Hour API at {self.base_url} to {what}{tries}: "
        message += self._describe(failure)
        # A request that never connected was never sent; any other may have arrived.
        if method != "GET" and not isinstance(failure, httpx.ConnectError):
            message += f"; {DASHBOARD_HINT}"
        return ApiError(message)

    def _describe(self, failure: httpx.HTTPError | DeadlineExceeded) -> str:
        if isinstance(failure, DeadlineExceeded):
            return str(failure)
        if isinstance(failure, httpx.TimeoutException):
            phase = "connecting" if isinstance(failure, httpx.ConnectTimeout) else "for an answer"
            return f"timed out after {self.timeout:g} s {phase}"
        return redact(describe_failure(failure, self.timeout, tls_fix=TLS_FIX), self.api_key)


def _created(kind: JobKind, answer: Any) -> CreatedJob:
    data = _object(answer, f"new {kind} job")
    job_id = data.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise ApiError(f"Magic Hour accepted the {kind} job but its answer has no id: {answer!r}")
    charged = data.get("credits_charged")
    return CreatedJob(kind, job_id, charged if isinstance(charged, int) else None)


def _object(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ApiError(
            f"Magic Hour's answer for the {what} is not a JSON object: {_one_line(repr(answer))}"
        )
    return answer


def _error_detail(answer: Answer) -> tuple[str | None, str | None]:
    """The API's error code and message from ``{"message"}``, ``{"code", "message"}``,
    ``{"error": ...}`` or plain text; (None, None) when it said nothing useful."""
    try:
        data = json.loads(answer.body)
    except (ValueError, RecursionError):
        if "html" in (answer.header("content-type") or ""):
            return None, None  # a proxy's error page: its status says as much in one line
        return None, _one_line(_text(answer)) or None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data = data["error"]
    if isinstance(data, dict):
        code, message = data.get("code"), data.get("message", data.get("error"))
        return (
            str(code) if isinstance(code, (str, int)) else None,
            _one_line(message) if isinstance(message, str) else None,
        )
    return None, _one_line(data) if isinstance(data, str) else None


def _text(answer: Answer) -> str:
    return answer.body.decode("utf-8", errors="replace")


def _one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut at ``limit`` characters: messages must stay one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _without_query(url: str) -> str:
    """A download URL as it may be shown: its query holds the signature that grants access."""
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(url: str, project_id: str | None) -> str:
    segment = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    name = _UNSAFE.sub("_", segment).lstrip(".") or "download"
    if project_id and project_id not in name:
        name = f"{_UNSAFE.sub('_', project_id)}-{name}"
    return name


def _new_file(directory: Path, name: str) -> tuple[Path, BinaryIO]:
    """A file created for writing under ``name``, or ``stem-1.ext``... if that exists."""
    stem, dot, suffix = name.partition(".")
    for number in range(1000):
        candidate = directory / (name if number == 0 else f"{stem}-{number}{dot}{suffix}")
        try:
            return candidate, candidate.open("xb")
        except FileExistsError:
            continue
    raise ApiError(f"cannot download into {directory}: too many files named {name}")
