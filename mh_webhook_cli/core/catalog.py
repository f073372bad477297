"""The Magic Hour webhook event catalog: event types, typed payload models and a validator.

The source of truth is Magic Hour's OpenAPI document, shipped verbatim as
``mh_webhook_cli/spec/webhooks.openapi.json``. The pydantic models below transcribe it by hand
so that the rest of the tool gets typed objects; the tests walk the shipped document and check
every required field, type, enum and nullable flag against these models, so the transcription
cannot drift from the spec unnoticed.

Validation is driven by the models, not by the JSON schema: one implementation of the rules,
with the spec kept as the independent oracle in the tests. Pydantic's errors are translated into
:class:`Finding` objects with JSON paths, because ``mhw`` reports problems in someone's event
(received or hand-written) rather than failing on them.

Checked: JSON types, required fields, nullability, enums. Not checked, because the spec gives
them as hints rather than rules that Magic Hour's own SDKs enforce: ``format`` (``date-time``,
``uri``) and ``minimum`` on the clip boundaries.

Pure: the only I/O is reading the package's own copy of the spec, once.
"""

from __future__ import annotations

import functools
import json
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from mh_webhook_cli.core.json_text import loads_if_exact

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

EVENT_TYPES: tuple[str, ...] = (
    "video.started",
    "video.completed",
    "video.errored",
    "image.started",
    "image.completed",
    "image.errored",
    "audio.started",
    "audio.completed",
    "audio.errored",
)
"""Every event Magic Hour sends, as ``{resource}.{action}``, in the docs' order."""

FindingCode = Literal[
    "missing_field",
    "wrong_type",
    "unknown_enum_value",
    "unknown_event_type",
    "payload_not_object",
    "not_an_object",
    "invalid_json",
    "not_utf8",
]
FINDING_CODES: tuple[FindingCode, ...] = get_args(FindingCode)

ProjectStatus = Literal["draft", "queued", "rendering", "complete", "error", "canceled"]


@dataclass(frozen=True)
class Finding:
    """One problem in an event, located by a JSON path such as ``$.payload.downloads[0].url``."""

    path: str
    code: FindingCode
    message: str


class _SpecModel(BaseModel):
    # Strict, like JSON Schema: "512" is not an integer and 1 is not a boolean. Open, because
    # Magic Hour adds fields to payloads over time and a handler must not reject them. Built on
    # first use rather than at import, which halves the cost of importing this module.
    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)


class Download(_SpecModel):
    """A rendered file; the URL stops working at ``expires_at`` (about 24 hours)."""

    url: str
    expires_at: str


class ErrorDetail(_SpecModel):
    """Why a render failed; ``code`` is machine-readable, ``message`` is meant for end users."""

    message: str
    code: str


class ProjectPayload(_SpecModel):
    """Fields every project payload has: the ``GET /v1/{video,image,audio}-projects/:id`` shape."""

    id: str
    name: str | None
    status: ProjectStatus
    type: str
    created_at: str
    enabled: bool
    credits_charged: int
    downloads: list[Download]
    error: ErrorDetail | None


class VideoProject(ProjectPayload):
    width: int
    height: int
    start_seconds: float
    end_seconds: float
    total_frame_cost: int
    fps: float
    download: Download | None


class ImageProject(ProjectPayload):
    image_count: int
    total_frame_cost: int


class AudioProject(ProjectPayload):
    """Audio projects carry only the shared fields."""


class VideoEvent(_SpecModel):
    type: Literal["video.started", "video.completed", "video.errored"]
    payload: VideoProject


class ImageEvent(_SpecModel):
    type: Literal["image.started", "image.completed", "image.errored"]
    payload: ImageProject


class AudioEvent(_SpecModel):
    type: Literal["audio.started", "audio.completed", "audio.errored"]
    payload: AudioProject


_EVENT_MODELS_BY_KIND: dict[str, type[VideoEvent] | type[ImageEvent] | type[AudioEvent]] = {
    "video": VideoEvent,
    "image": ImageEvent,
    "audio": AudioEvent,
}
EVENT_MODELS: Mapping[str, type[VideoEvent] | type[ImageEvent] | type[AudioEvent]] = (
    types.MappingProxyType(
        {event_type: _EVENT_MODELS_BY_KIND[event_type.split(".")[0]] for event_type in EVENT_TYPES}
    )
)
"""The envelope model for each event type, for callers that want typed access to an event."""

_PAYLOAD_MODELS: dict[str, type[ProjectPayload]] = {
    "video": VideoProject,
    "image": ImageProject,
    "audio": AudioProject,
}


@functools.cache
def load_event_schemas() -> Mapping[str, Mapping[str, Any]]:
    """Return each event type's JSON schema: the request body of ``POST /{event}`` in the spec.

    Read once from the package's own copy of the spec, so it works from a wheel or a zip and
    never touches the network. The result is shared between callers: do not mutate it.
    """
    # Imported here: importlib.resources costs more at start-up than the rest of this module,
    # and most commands never need the spec.
    import importlib.resources

    spec_file = importlib.resources.files("mh_webhook_cli.core") / "spec" / "webhooks.openapi.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    return types.MappingProxyType(
        {
            event_type: spec["paths"][f"/{event_type}"]["post"]["requestBody"]["content"][
                "application/json"
            ]["schema"]
            for event_type in EVENT_TYPES
        }
    )


def json_type_name(value: object) -> str:
    """Name a Python value by its JSON type, as the spec does (``integer``, ``null``, ...)."""
    if value is None:
        return "null"
    # bool before int: True is an int in Python but a boolean in JSON.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def validate_body(raw: bytes | str) -> list[Finding]:
    """Validate a raw request body; undecodable bytes and bad JSON are findings, not exceptions."""
    document, findings = parse_body(raw)
    return findings if findings else validate_event(document)


def parse_body(raw: bytes | str) -> tuple[Any, list[Finding]]:
    """The JSON document in a body, or None with the finding that says why there is none.

    Bytes must be UTF-8: that is what Magic Hour sends and what RFC 8259 requires between
    systems, and ``json.loads`` would otherwise guess UTF-16 or UTF-32 and hide the mistake.
    """
    if isinstance(raw, bytes):
        document = loads_if_exact(raw)
        if document is not None:
            return document, []
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            return None, [
                Finding(
                    "$",
                    "not_utf8",
                    f"body is not valid UTF-8: byte 0x{raw[error.start]:02x} "
                    f"at offset {error.start}",
                )
            ]
    else:
        text = raw
    if not text.strip():
        return None, [Finding("$", "invalid_json", "body is empty, expected a JSON object")]
    try:
        if text.startswith("\ufeff"):  # json.loads refuses a BOM; the bare decoder would not
            raise json.JSONDecodeError("Unexpected UTF-8 BOM", text, 0)
        data = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        return None, [
            Finding(
                "$",
                "invalid_json",
                f"body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
            )
        ]
    # ValueError: NaN or Infinity (see _reject_javascript_constant) or an integer too long for
    # int(); RecursionError: nesting deeper than the parser's stack.
    except RecursionError:
        return None, [Finding("$", "invalid_json", "body nests JSON too deeply to read")]
    except ValueError as error:
        return None, [Finding("$", "invalid_json", f"body is not valid JSON: {error}")]
    return data, []


def _reject_javascript_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, but they are not JSON and other parsers reject them.
    raise ValueError(f"{name} is not a JSON value")


# One decoder for every body: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_javascript_constant)


def validate_event(data: object) -> list[Finding]:
    """List what is wrong with an event against the spec; an empty list means it is valid.

    Unknown extra fields are accepted everywhere. The payload is checked only when the event
    type is known, because the type decides which fields the payload must have.
    """
    if not isinstance(data, dict):
        return [
            Finding(
                "$", "not_an_object", f"an event must be a JSON object, got {json_type_name(data)}"
            )
        ]
    findings: list[Finding] = []
    kind = _known_event_kind(data, findings)
    if "payload" not in data:
        findings.append(
            Finding("$.payload", "missing_field", "required field 'payload' is missing")
        )
    elif not isinstance(data["payload"], dict):
        findings.append(
            Finding(
                "$.payload",
                "payload_not_object",
                f"payload must be a JSON object, got {json_type_name(data['payload'])}",
            )
        )
    elif kind is not None:
        findings.extend(_payload_findings(_PAYLOAD_MODELS[kind], data["payload"]))
    return findings


def _known_event_kind(event: dict[Any, Any], findings: list[Finding]) -> str | None:
    """Return ``video``, ``image`` or ``audio``; on a bad ``type``, record why and return None."""
    if "type" not in event:
        findings.append(Finding("$.type", "missing_field", "required field 'type' is missing"))
        return None
    event_type = event["type"]
    if not isinstance(event_type, str):
        findings.append(Finding("$.type", "wrong_type", _type_mismatch("string", event_type)))
        return None
    if event_type not in EVENT_TYPES:
        findings.append(
            Finding(
                "$.type",
                "unknown_event_type",
                f"unknown event type {event_type!r}; Magic Hour sends {', '.join(EVENT_TYPES)}",
            )
        )
        return None
    return event_type.split(".")[0]


def _payload_findings(model: type[ProjectPayload], payload: dict[Any, Any]) -> list[Finding]:
    # Almost every payload a listener receives is valid: that answer costs a quarter of
    # pydantic's (0.8 µs against 3.7, python bench/validators.py). Only a payload with a
    # problem pays for the model, which words the findings.
    if _conformance_check(model)(payload):
        return []
    return _pydantic_findings(model, payload)


def _pydantic_findings(model: type[ProjectPayload], payload: dict[Any, Any]) -> list[Finding]:
    try:
        model.model_validate(payload)
    except ValidationError as error:
        return [
            _finding_from_pydantic(model, detail)
            for detail in error.errors(include_url=False)
            # A non-string key can only come from Python callers, never from JSON, and like
            # any unknown key it names no spec field: an extra, so not a finding.
            if detail["type"] != "invalid_key"
        ]
    return []


@functools.cache
def _conformance_check(model: type[BaseModel]) -> Callable[[Any], bool]:
    """Whether a JSON value meets ``model``, by msgspec: a yes or no, without findings.

    The msgspec type is derived from the model, so the models stay the one transcription of
    the spec; ``tests/test_events.py`` holds the answer to pydantic's on generated payloads.
    For JSON values only: msgspec takes a tuple for a list, which JSON never gives.
    """
    import msgspec

    struct = _msgspec_type(model)
    convert = msgspec.convert

    def conforms(value: Any) -> bool:
        try:
            convert(value, struct, strict=True)
        except Exception:
            # Anything short of a clean yes goes to pydantic, the authority: msgspec raises
            # UnicodeEncodeError, not ValidationError, for a key or a wrong-typed value
            # holding a lone surrogate ({"\ud800":1} is valid JSON).
            return False
        return True

    return conforms


@functools.cache
def _msgspec_type(annotation: Any) -> Any:
    """The msgspec equivalent of a model's field type: each model becomes a Struct of its
    fields (unknown keys ignored, as ``extra="allow"`` accepts them), the rest maps as is."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        import msgspec

        # Every field is required, as in the spec. One given a default would only send the
        # payloads without it to pydantic: slower, never wrong.
        fields: list[tuple[str, Any]] = [
            (name, _msgspec_type(cast(Any, field.annotation)))
            for name, field in annotation.model_fields.items()
        ]
        return msgspec.defstruct(annotation.__name__, fields)
    origin = get_origin(annotation)
    if origin is list:
        return list[_msgspec_type(get_args(annotation)[0])]  # type: ignore[misc]
    if origin is Union or origin is types.UnionType:
        return Union[tuple(_msgspec_type(arg) for arg in get_args(annotation))]  # noqa: UP007
    return annotation  # str, int, float, bool, None, Literal[...]


def _finding_from_pydantic(model: type[ProjectPayload], detail: ErrorDetails) -> Finding:
    location = detail["loc"]
    path = "$.payload" + "".join(
        f"[{step}]" if isinstance(step, int) else f".{step}" for step in location
    )
    if detail["type"] == "missing":
        return Finding(path, "missing_field", f"required field {location[-1]!r} is missing")
    annotation = _annotation_at(model, location)
    value = detail["input"]
    allowed = get_args(annotation) if get_origin(annotation) is Literal else ()
    if allowed and isinstance(value, str):
        return Finding(
            path,
            "unknown_enum_value",
            f"{value!r} is not a valid {location[-1]}; allowed: {', '.join(allowed)}",
        )
    # Every other pydantic error on these strict, constraint-free models is a type mismatch.
    expected = _json_type_of(_without_none(annotation))
    if allowed:
        expected += f" (one of {', '.join(allowed)})"
    if _is_nullable(annotation):
        expected += " or null"
    return Finding(path, "wrong_type", _type_mismatch(expected, value))


def _type_mismatch(expected: str, value: object) -> str:
    message = f"expected {expected}, got {json_type_name(value)}"
    # Only reached for a null when the field is not nullable: say so, since null is special.
    if value is None:
        message += " (this field is not nullable)"
    return message


def _annotation_at(model: type[BaseModel], location: tuple[int | str, ...]) -> Any:
    """Follow a pydantic error location through the models to the annotation it points at."""
    annotation: Any = model
    for step in location:
        container = _without_none(annotation)
        if isinstance(step, int):
            (annotation,) = get_args(container)
        else:
            annotation = container.model_fields[step].annotation
    return annotation


def _is_nullable(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _without_none(annotation: Any) -> Any:
    if not _is_nullable(annotation):
        return annotation
    (non_null,) = (arg for arg in get_args(annotation) if arg is not type(None))
    return non_null


_JSON_TYPES_OF_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
}


def _json_type_of(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "string"
    if get_origin(annotation) is list:
        return "array"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return _JSON_TYPES_OF_SCALARS[annotation]
