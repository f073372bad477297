"""Realistic Magic Hour webhook events to send to a handler, and ``--set`` overrides for them.

Each fixture has every field the shipped OpenAPI spec requires, in the spec's order, with values
taken from Magic Hour's docs and SDKs: cuid ids, millisecond UTC timestamps, the project types
the spec lists, download URLs on Magic Hour's CDN hosts that expire 24 hours later, and the
documented error codes. Fields that appear only in the docs' prose examples (``completed_at``,
``failed_at``, ``width``/``height`` on images) are left out on purpose: the spec and the SDKs
do not have them, and a handler tested against them would break on real events.

Pure and deterministic: the clock is never read (``now`` is an argument) and the same arguments
always produce the same event, so fixtures can be used for golden files and known signatures.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from mh_webhook_cli.core.catalog import EVENT_TYPES, ProjectStatus, json_type_name
from mh_webhook_cli.errors import InvalidValue, OverrideError

DOWNLOAD_LIFETIME = timedelta(hours=24)
"""How long Magic Hour's download URLs stay valid, per the docs."""

ERROR_CODES: Mapping[str, Mapping[str, str]] = {
    "video": {
        "invalid_video_file": "The video file contains invalid data. Please try a different file.",
        "file_too_large": "The video file is too large. Please upload a file under the size limit.",
        "insufficient_credits": (
            "You do not have enough credits to render this video. Please upgrade your plan."
        ),
        "invalid_parameters": (
            "The requested width and height are not supported. Please adjust them and try again."
        ),
        "processing_timeout": (
            "Rendering took too long and was stopped. Please try again with a shorter clip."
        ),
    },
    "image": {
        "no_source_face": "Please use an image with a detectable face",
        "invalid_file_format": (
            "The image format is not supported. Please upload a PNG, JPG or WEBP file."
        ),
        "file_too_large": "The image is too large. Please upload a file under the size limit.",
        "insufficient_credits": (
            "You do not have enough credits to create this image. Please upgrade your plan."
        ),
        "invalid_parameters": "The requested dimensions are not supported. Please adjust them.",
        "content_policy_violation": (
            "The image violates our content policy and could not be processed."
        ),
    },
    "audio": {
        "text_too_long": "The text is too long for voice generation. Please shorten it.",
        "invalid_voice": "The requested voice is not available. Please choose another voice.",
        "insufficient_credits": (
            "You do not have enough credits to generate this audio. Please upgrade your plan."
        ),
        "processing_timeout": "Audio generation took too long and was stopped. Please try again.",
    },
}
"""The error codes Magic Hour documents for each resource, with a realistic message for each.

The first code of each resource is the one an errored fixture uses unless told otherwise.
"""


@dataclass(frozen=True)
class VideoClip:
    """What only a video project describes: its frame size, length and frame rate."""

    width: int
    height: int
    end_seconds: float
    fps: int


@dataclass(frozen=True)
class _Recipe:
    project_type: str
    project_name: str
    summary: str
    age: timedelta
    """How long before the event the project was created (timings from the docs' examples)."""
    credits: int
    """What the job costs; errored events show 0 because Magic Hour refunds failed jobs."""


@dataclass(frozen=True)
class _VideoRecipe(_Recipe):
    clip: VideoClip


@dataclass(frozen=True)
class _ImageRecipe(_Recipe):
    image_count: int


_RECIPES: dict[str, _Recipe] = {
    "video.started": _VideoRecipe(
        "ANIMATION",
        "Neon city animation",
        "an animation render has started",
        age=timedelta(seconds=6, milliseconds=311),
        credits=450,
        clip=VideoClip(width=512, height=960, end_seconds=15, fps=30),
    ),
    "video.completed": _VideoRecipe(
        "TEXT_TO_VIDEO",
        "Corgi surfing at sunset",
        "a text-to-video render finished with an MP4 to download",
        age=timedelta(minutes=5, seconds=26, milliseconds=96),
        credits=300,
        clip=VideoClip(width=720, height=1280, end_seconds=5, fps=30),
    ),
    "video.errored": _VideoRecipe(
        "FACE_SWAP",
        "Face swap birthday clip",
        "a face swap render failed (credits refunded)",
        age=timedelta(minutes=2, seconds=11, milliseconds=429),
        credits=600,
        clip=VideoClip(width=1280, height=720, end_seconds=10, fps=30),
    ),
    # The docs warn that fast modes such as AI_IMAGE may skip "started", so a slower one here.
    "image.started": _ImageRecipe(
        "AI_HEADSHOT",
        "Studio headshot",
        "an AI headshot job has started rendering",
        age=timedelta(seconds=2, milliseconds=48),
        credits=50,
        image_count=1,
    ),
    "image.completed": _ImageRecipe(
        "AI_IMAGE",
        "Lighthouse in a storm",
        "an AI image finished with a PNG to download",
        age=timedelta(seconds=6, milliseconds=762),
        credits=5,
        image_count=1,
    ),
    "image.errored": _ImageRecipe(
        "FACE_SWAP",
        "Face swap portrait",
        "a face swap image failed (credits refunded)",
        age=timedelta(seconds=3, milliseconds=96),
        credits=5,
        image_count=1,
    ),
    "audio.started": _Recipe(
        "VOICE_GENERATOR",
        "Podcast intro voice-over",
        "a voice generation job has started",
        age=timedelta(seconds=1, milliseconds=205),
        credits=5,
    ),
    "audio.completed": _Recipe(
        "VOICE_GENERATOR",
        "Product demo narration",
        "a generated voice finished with an MP3 to download",
        age=timedelta(seconds=16, milliseconds=429),
        credits=5,
    ),
    "audio.errored": _Recipe(
        "VOICE_GENERATOR",
        "Audiobook chapter one",
        "a voice generation job failed (credits refunded)",
        age=timedelta(seconds=4, milliseconds=118),
        credits=5,
    ),
}

FIXTURE_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    event_type: (recipe.project_type, recipe.summary) for event_type, recipe in _RECIPES.items()
}
"""For each event type: the project type its fixture uses and what the fixture represents."""

_STATUS_BY_ACTION: dict[str, ProjectStatus] = {
    "started": "rendering",
    "completed": "complete",
    "errored": "error",
}
_OUTPUT_BY_KIND = {
    "video": ("videos.magichour.ai", "mp4"),
    "image": ("images.magichour.ai", "png"),
    "audio": ("audio.magichour.ai", "mp3"),
}
_BASE36_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def build_fixture(
    event_type: str,
    *,
    project_id: str | None = None,
    error_code: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """Build the event Magic Hour would send at ``now`` (timezone-aware) for ``event_type``.

    Without ``project_id`` the id is derived from the event type and ``now``: a 25-character
    cuid whose timestamp part encodes the project's creation time, as Magic Hour's do.
    ``error_code`` picks one of :data:`ERROR_CODES` for an errored event.
    """
    if event_type not in _RECIPES:
        raise InvalidValue(
            f"unknown event type {event_type!r}; choose one of {', '.join(EVENT_TYPES)}"
        )
    _require_aware(now, "now")
    if project_id == "":
        raise InvalidValue("project_id must not be empty")
    kind, action = event_type.split(".")
    recipe = _RECIPES[event_type]
    created_at = now - recipe.age
    if project_id is None:
        # UTC so that the same instant gives the same id whatever timezone `now` is in.
        instant = now.astimezone(timezone.utc).isoformat()
        project_id = cuid(created_at, hashlib.sha256(f"{event_type}|{instant}".encode()).digest())
    host, extension = _OUTPUT_BY_KIND[kind]
    payload = project_payload(
        kind,
        project_id=project_id,
        project_type=recipe.project_type,
        name=recipe.project_name,
        status=_STATUS_BY_ACTION[action],
        created_at=created_at,
        now=now,
        credits_charged=0 if action == "errored" else recipe.credits,
        error_code=error_code,
        download_urls=(
            [f"https://{host}/{project_id}/output.{extension}"] if action == "completed" else ()
        ),
        image_count=recipe.image_count if isinstance(recipe, _ImageRecipe) else 1,
        clip=recipe.clip if isinstance(recipe, _VideoRecipe) else None,
    )
    return {"type": event_type, "payload": payload}


def project_payload(
    kind: str,
    *,
    project_id: str,
    project_type: str,
    name: str | None,
    status: ProjectStatus,
    created_at: datetime,
    now: datetime,
    credits_charged: int,
    error_code: str | None = None,
    download_urls: Sequence[str] = (),
    image_count: int = 1,
    clip: VideoClip | None = None,
) -> dict[str, Any]:
    """A project as ``GET /v1/{kind}-projects/{id}`` returns it at ``now``.

    This is also the ``payload`` of every webhook event about the project, so fixtures and
    ``mhw emulate`` share this one builder and cannot drift apart. A project whose status is
    ``error`` carries :data:`ERROR_CODES` ``[kind][error_code]`` (the kind's first code when
    ``error_code`` is None); any other status has ``error: null``. Each of ``download_urls``
    expires :data:`DOWNLOAD_LIFETIME` after ``now``. ``image_count`` is for image projects;
    a video project needs its ``clip``. Datetimes must be timezone-aware.
    """
    if kind not in _OUTPUT_BY_KIND:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(_OUTPUT_BY_KIND)}")
    _require_aware(now, "now")
    _require_aware(created_at, "created_at")
    expires_at = _timestamp(now + DOWNLOAD_LIFETIME)
    project = _ProjectState(
        project_id=project_id,
        project_type=project_type,
        name=name,
        status=status,
        created_at=_timestamp(created_at),
        credits_charged=credits_charged,
        error=_error_for(kind, status, error_code),
        downloads=[{"url": url, "expires_at": expires_at} for url in download_urls],
    )
    if kind == "video":
        if clip is None:
            raise ValueError("a video project needs its clip (width, height, length, fps)")
        return _video_payload(clip, project)
    if kind == "image":
        return _image_payload(image_count, project)
    return _audio_payload(project)


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, e.g. datetime.now(timezone.utc)")


@dataclass(frozen=True)
class _ProjectState:
    """What one payload says about its project, whatever the kind of project."""

    project_id: str
    project_type: str
    name: str | None
    status: ProjectStatus
    created_at: str
    credits_charged: int
    error: dict[str, str] | None
    downloads: list[dict[str, str]]


# The payload builders list keys in the spec's order so printed fixtures read like the docs.


def _video_payload(clip: VideoClip, project: _ProjectState) -> dict[str, Any]:
    return {
        "id": project.project_id,
        "name": project.name,
        "status": project.status,
        "type": project.project_type,
        "created_at": project.created_at,
        "width": clip.width,
        "height": clip.height,
        "enabled": True,
        "start_seconds": 0,
        "end_seconds": clip.end_seconds,
        "total_frame_cost": project.credits_charged,
        "credits_charged": project.credits_charged,
        "fps": clip.fps,
        "error": project.error,
        "downloads": project.downloads,
        # The deprecated single `download` mirrors downloads[0]; a separate dict so that an
        # override of one does not silently change the other.
        "download": dict(project.downloads[0]) if project.downloads else None,
    }


def _image_payload(image_count: int, project: _ProjectState) -> dict[str, Any]:
    return {
        "id": project.project_id,
        "name": project.name,
        "status": project.status,
        "image_count": image_count,
        "type": project.project_type,
        "created_at": project.created_at,
        "enabled": True,
        "total_frame_cost": project.credits_charged,
        "credits_charged": project.credits_charged,
        "downloads": project.downloads,
        "error": project.error,
    }


def _audio_payload(project: _ProjectState) -> dict[str, Any]:
    return {
        "id": project.project_id,
        "name": project.name,
        "status": project.status,
        "type": project.project_type,
        "created_at": project.created_at,
        "enabled": True,
        "credits_charged": project.credits_charged,
        "downloads": project.downloads,
        "error": project.error,
    }


def _error_for(kind: str, status: str, error_code: str | None) -> dict[str, str] | None:
    documented = ERROR_CODES[kind]
    if status != "error":
        if error_code is not None:
            raise InvalidValue(
                f"error_code applies only to {kind}.errored (status 'error'), "
                f"not to a project with status {status!r}"
            )
        return None
    if error_code is None:
        error_code = next(iter(documented))
    elif error_code not in documented:
        raise InvalidValue(
            f"{error_code!r} is not a documented {kind} error code; "
            f"choose one of {', '.join(documented)}"
        )
    return {"code": error_code, "message": documented[error_code]}


def _timestamp(moment: datetime) -> str:
    """Format like Magic Hour: UTC, milliseconds, ``Z`` (``2024-10-19T05:10:19.027Z``)."""
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return f"{utc.isoformat(timespec='milliseconds')}Z"


def cuid(created_at: datetime, entropy: bytes) -> str:
    """A cuid (v1) look-alike, as Magic Hour's project ids are: 25 characters.

    ``c``, 8 base36 digits of the creation time in milliseconds, 16 base36 digits of
    ``entropy`` (hashed bytes for a fixture, random ones for an emulated project).
    """
    milliseconds = int(created_at.timestamp() * 1000)
    # The modulo keeps the id at 25 characters for any date, even before 1970 or after 2059.
    timestamp_part = _base36(milliseconds % 36**8).rjust(8, "0")
    entropy_part = _base36(int.from_bytes(entropy, "big") % 36**16).rjust(16, "0")
    return f"c{timestamp_part}{entropy_part}"


def _base36(number: int) -> str:
    digits: list[str] = []
    while True:
        number, remainder = divmod(number, 36)
        digits.append(_BASE36_DIGITS[remainder])
        if number == 0:
            return "".join(reversed(digits))


_PATH_SEGMENT = re.compile(r"(?P<key>[^.\[\]]+)(?P<indexes>(?:\[[0-9]+\])*)")
_INDEX = re.compile(r"\[([0-9]+)\]")


def apply_overrides(event: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``event`` with each ``PATH=VALUE`` assignment applied, in order.

    ``PATH`` is dotted keys with optional list indexes (``payload.downloads[0].url``); a
    leading ``$.`` is accepted so paths can be pasted from validation findings. Missing or
    null objects along the path are created; lists are never grown, so an index must exist.
    ``VALUE`` is parsed as JSON when it parses (``5``, ``null``, ``[]``, ``"5"``) and is
    otherwise taken as a plain string, so ``payload.status=error`` needs no shell quoting.
    """
    result = copy.deepcopy(dict(event))
    for assignment in assignments:
        path, separator, raw_value = assignment.partition("=")
        if not separator:
            raise OverrideError(
                f"invalid assignment {assignment!r}: expected PATH=VALUE, e.g. payload.status=error"
            )
        steps = _parse_path(path.strip(), assignment)
        _assign(result, steps, _parse_value(raw_value))
    return result


def _parse_path(path: str, assignment: str) -> list[str | int]:
    if path.startswith("$."):
        path = path[2:]
    if not path:
        raise OverrideError(f"invalid assignment {assignment!r}: the path before '=' is empty")
    steps: list[str | int] = []
    for segment in path.split("."):
        match = _PATH_SEGMENT.fullmatch(segment)
        if match is None:
            raise OverrideError(
                f"invalid path {path!r}: use dotted keys with optional [index], "
                "e.g. payload.downloads[0].url"
            )
        steps.append(match["key"])
        steps.extend(int(index) for index in _INDEX.findall(match["indexes"]))
    return steps


def _parse_value(raw_value: str) -> Any:
    try:
        return json.loads(raw_value, parse_constant=_not_json, parse_float=_finite_float)
    except (ValueError, RecursionError):
        return raw_value


# Python's json turns NaN, Infinity and 1e999 into floats that json.dumps then writes as NaN or
# Infinity, which is not JSON: such values stay plain strings instead.


def _not_json(name: str) -> Any:
    raise ValueError(name)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


_ABSENT = object()


def _assign(root: dict[str, Any], steps: list[str | int], value: Any) -> None:
    container: Any = root
    for position, step in enumerate(steps):
        where = _render_path(steps[:position])
        if isinstance(step, int):
            if not isinstance(container, list):
                raise OverrideError(
                    f"cannot use index [{step}] on {where}: "
                    f"it is {_describe(container)}, not an array"
                )
            if step >= len(container):
                raise OverrideError(
                    f"index [{step}] is out of range for {where}, which has "
                    f"{len(container)} item(s); set the whole list instead, e.g. {where}=[...]"
                )
        elif not isinstance(container, dict):
            raise OverrideError(
                f"cannot set key {step!r} in {where}: it is {_describe(container)}, not an object"
            )
        if position == len(steps) - 1:
            container[step] = value
            return
        child = container[step] if isinstance(step, int) else container.get(step, _ABSENT)
        # A null counts as absent, so payload.error.code=... also works on a started event.
        if (child is _ABSENT or child is None) and isinstance(steps[position + 1], str):
            child = container[step] = {}
        container = child


def _describe(value: object) -> str:
    return "missing" if value is _ABSENT else json_type_name(value)


def _render_path(steps: list[str | int]) -> str:
    return "".join(
        f"[{step}]" if isinstance(step, int) else (f".{step}" if index else step)
        for index, step in enumerate(steps)
    )
