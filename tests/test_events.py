"""Tests for the event catalog: the models and the validator against the shipped spec.

The spec-driven tests below never name a field: they walk the JSON schema shipped in the
package, so a field added to the spec, or a model that stops matching it, fails here.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from mh_webhook_cli.core import catalog
from mh_webhook_cli.core.catalog import (
    EVENT_MODELS,
    EVENT_TYPES,
    FINDING_CODES,
    AudioProject,
    Download,
    ErrorDetail,
    Finding,
    ImageProject,
    VideoProject,
    json_type_name,
    load_event_schemas,
    parse_body,
    validate_body,
    validate_event,
)
from mh_webhook_cli.core.fixtures import build_fixture

NOW = datetime(2024, 10, 19, 5, 15, 45, 123000, tzinfo=timezone.utc)

# --- walking the shipped spec ---------------------------------------------------------------

Step = str | int


@dataclass(frozen=True)
class Node:
    steps: tuple[Step, ...]
    schema: Mapping[str, Any]

    @property
    def path(self) -> str:
        return json_path(self.steps)


def schema_nodes(schema: Mapping[str, Any], steps: tuple[Step, ...] = ()) -> Iterator[Node]:
    """Every schema node with the steps leading to it; array items are reached through [0]."""
    yield Node(steps, schema)
    for name, child in schema.get("properties", {}).items():
        yield from schema_nodes(child, (*steps, name))
    if "items" in schema:
        yield from schema_nodes(schema["items"], (*steps, 0))


def json_path(steps: tuple[Step, ...]) -> str:
    return "$" + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in steps)


def sample_from_schema(schema: Mapping[str, Any]) -> Any:
    """A value with every property present, null nowhere and one item in every array."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema["type"]
    if kind == "object":
        return {name: sample_from_schema(child) for name, child in schema["properties"].items()}
    if kind == "array":
        return [sample_from_schema(schema["items"])]
    return {"string": "text", "integer": 7, "number": 2.5, "boolean": True}[kind]


def full_sample(event_type: str) -> dict[str, Any]:
    sample = sample_from_schema(load_event_schemas()[event_type])
    assert isinstance(sample, dict)
    return sample


def replaced(document: dict[str, Any], steps: tuple[Step, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    parent: Any = changed
    for step in steps[:-1]:
        parent = parent[step]
    parent[steps[-1]] = value
    return changed


def deleted(document: dict[str, Any], steps: tuple[Step, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    parent: Any = changed
    for step in steps[:-1]:
        parent = parent[step]
    del parent[steps[-1]]
    return changed


def spec_cases(predicate: str) -> list[tuple[str, Node]]:
    """(event type, node) for every node of every event schema that the predicate selects."""
    selected = []
    for event_type in EVENT_TYPES:
        for node in schema_nodes(load_event_schemas()[event_type]):
            if _PREDICATES[predicate](node):
                selected.append((event_type, node))
    return selected


_PREDICATES = {
    "required": lambda node: bool(node.schema.get("required")),
    "enum": lambda node: "enum" in node.schema,
    "typed_child": lambda node: bool(node.steps),
}


def case_id(case: tuple[str, Node]) -> str:
    return f"{case[0]}:{case[1].path}"


REQUIRED_CASES = spec_cases("required")
ENUM_CASES = spec_cases("enum")
TYPED_CASES = spec_cases("typed_child")


def codes_and_paths(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(finding.code, finding.path) for finding in findings]


# --- the shipped spec itself ----------------------------------------------------------------


def test_event_types_are_the_nine_documented_ones_in_order() -> None:
    expected = tuple(
        f"{kind}.{action}"
        for kind in ("video", "image", "audio")
        for action in ("started", "completed", "errored")
    )
    assert expected == EVENT_TYPES


def test_spec_is_read_from_the_package_and_describes_exactly_the_nine_events() -> None:
    schemas = load_event_schemas()
    assert list(schemas) == list(EVENT_TYPES)
    for event_type, schema in schemas.items():
        assert schema["required"] == ["type", "payload"]
        assert schema["properties"]["type"]["enum"] == [event_type]


def test_spec_is_loaded_once() -> None:
    assert load_event_schemas() is load_event_schemas()


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_models_have_exactly_the_spec_fields(event_type: str) -> None:
    schema = load_event_schemas()[event_type]
    payload_schema = schema["properties"]["payload"]
    payload_model = EVENT_MODELS[event_type].model_fields["payload"].annotation
    assert isinstance(payload_model, type)
    assert issubclass(payload_model, BaseModel)
    assert set(payload_model.model_fields) == set(payload_schema["properties"])
    nested: dict[str, type[BaseModel]] = {"error": ErrorDetail, "download": Download}
    for name, model in nested.items():
        if name in payload_schema["properties"]:
            assert set(model.model_fields) == set(payload_schema["properties"][name]["properties"])
    download_items = payload_schema["properties"]["downloads"]["items"]
    assert set(Download.model_fields) == set(download_items["properties"])


def test_payload_model_per_kind() -> None:
    expected = {"video": VideoProject, "image": ImageProject, "audio": AudioProject}
    for event_type in EVENT_TYPES:
        model = EVENT_MODELS[event_type].model_fields["payload"].annotation
        assert model is expected[event_type.split(".")[0]]


# --- spec-driven validation: the models cannot drift from the spec ---------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_spec_shaped_sample_has_no_findings(event_type: str) -> None:
    # Every property present with a value of the spec's type: the models must accept all of it.
    assert validate_event(full_sample(event_type)) == []


@pytest.mark.parametrize(
    ("event_type", "node"), REQUIRED_CASES, ids=[case_id(case) for case in REQUIRED_CASES]
)
def test_each_required_field_from_the_spec_is_reported_when_missing(
    event_type: str, node: Node
) -> None:
    for name in node.schema["required"]:
        findings = validate_event(deleted(full_sample(event_type), (*node.steps, name)))
        assert codes_and_paths(findings) == [("missing_field", json_path((*node.steps, name)))]
        assert repr(name) in findings[0].message


@pytest.mark.parametrize(
    ("event_type", "node"), ENUM_CASES, ids=[case_id(case) for case in ENUM_CASES]
)
def test_every_enum_value_from_the_spec_is_accepted(event_type: str, node: Node) -> None:
    for value in node.schema["enum"]:
        assert validate_event(replaced(full_sample(event_type), node.steps, value)) == []


@pytest.mark.parametrize(
    ("event_type", "node"), ENUM_CASES, ids=[case_id(case) for case in ENUM_CASES]
)
def test_a_value_outside_a_spec_enum_is_reported(event_type: str, node: Node) -> None:
    findings = validate_event(replaced(full_sample(event_type), node.steps, "not-in-the-enum"))
    # The envelope's enum is the event type itself, which has its own finding code.
    expected_code = "unknown_event_type" if node.steps == ("type",) else "unknown_enum_value"
    assert codes_and_paths(findings) == [(expected_code, node.path)]
    for allowed in node.schema["enum"]:
        assert allowed in findings[0].message


_WRONG_TYPE_VALUE = {
    "string": 12345,
    "integer": "12",
    "number": "2.5",
    "boolean": "true",
    "array": {},
    "object": [],
}


@pytest.mark.parametrize(
    ("event_type", "node"), TYPED_CASES, ids=[case_id(case) for case in TYPED_CASES]
)
def test_a_value_of_another_json_type_is_reported(event_type: str, node: Node) -> None:
    expected_type = node.schema["type"]
    findings = validate_event(
        replaced(full_sample(event_type), node.steps, _WRONG_TYPE_VALUE[expected_type])
    )
    if node.steps == ("payload",):
        assert codes_and_paths(findings) == [("payload_not_object", "$.payload")]
        return
    assert codes_and_paths(findings) == [("wrong_type", node.path)]
    assert f"expected {expected_type}" in findings[0].message
    assert ("or null" in findings[0].message) == bool(node.schema.get("nullable"))


@pytest.mark.parametrize(
    ("event_type", "node"), TYPED_CASES, ids=[case_id(case) for case in TYPED_CASES]
)
def test_null_is_accepted_exactly_where_the_spec_says_nullable(event_type: str, node: Node) -> None:
    findings = validate_event(replaced(full_sample(event_type), node.steps, None))
    if node.schema.get("nullable"):
        assert findings == []
    elif node.steps == ("payload",):
        assert codes_and_paths(findings) == [("payload_not_object", "$.payload")]
    else:
        assert codes_and_paths(findings) == [("wrong_type", node.path)]
        assert "got null" in findings[0].message
        assert "not nullable" in findings[0].message


@pytest.mark.parametrize(
    ("event_type", "node"), TYPED_CASES, ids=[case_id(case) for case in TYPED_CASES]
)
def test_json_number_and_integer_rules(event_type: str, node: Node) -> None:
    # JSON Schema: an integer is a number, but a fraction is not an integer, and a boolean is
    # never a number (in Python True is an int, so this is the classic slip).
    sample = full_sample(event_type)
    if node.schema["type"] == "number":
        assert validate_event(replaced(sample, node.steps, 3)) == []
    if node.schema["type"] in ("number", "integer"):
        assert codes_and_paths(validate_event(replaced(sample, node.steps, True))) == [
            ("wrong_type", node.path)
        ]
    if node.schema["type"] == "integer":
        assert codes_and_paths(validate_event(replaced(sample, node.steps, 2.5))) == [
            ("wrong_type", node.path)
        ]


# --- fixtures and extras --------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_fixture_is_valid_and_parses_into_its_model(event_type: str) -> None:
    event = build_fixture(event_type, now=NOW)
    assert validate_event(event) == []
    parsed = EVENT_MODELS[event_type].model_validate(event)
    assert parsed.type == event_type
    assert parsed.payload.id == event["payload"]["id"]


def test_unknown_extra_fields_are_not_findings_at_any_depth() -> None:
    event = build_fixture("video.completed", now=NOW)
    event["delivered_by"] = "magic-hour-v2"
    event["payload"]["seed"] = 42
    event["payload"]["downloads"][0]["size_bytes"] = 1_048_576
    event["payload"]["download"]["checksum"] = "abc"
    errored = build_fixture("image.errored", now=NOW)
    errored["payload"]["error"]["retryable"] = False
    assert validate_event(event) == []
    assert validate_event(errored) == []
    assert EVENT_MODELS["video.completed"].model_validate(event).payload.model_extra == {"seed": 42}


# --- each finding code, with its exact path -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "got"), [([], "array"), ("video.started", "string"), (7, "integer"), (None, "null")]
)
def test_not_an_object(body: object, got: str) -> None:
    findings = validate_event(body)
    assert codes_and_paths(findings) == [("not_an_object", "$")]
    assert got in findings[0].message


def test_missing_type() -> None:
    event = build_fixture("video.started", now=NOW)
    del event["type"]
    assert codes_and_paths(validate_event(event)) == [("missing_field", "$.type")]


def test_type_that_is_not_a_string() -> None:
    event = build_fixture("video.started", now=NOW)
    event["type"] = ["video.started"]
    findings = validate_event(event)
    assert codes_and_paths(findings) == [("wrong_type", "$.type")]
    assert findings[0].message == "expected string, got array"


def test_unknown_event_type_names_the_known_ones() -> None:
    event = build_fixture("video.completed", now=NOW)
    event["type"] = "video.finished"
    findings = validate_event(event)
    assert codes_and_paths(findings) == [("unknown_event_type", "$.type")]
    assert "'video.finished'" in findings[0].message
    for event_type in EVENT_TYPES:
        assert event_type in findings[0].message


def test_payload_missing() -> None:
    findings = validate_event({"type": "audio.started"})
    assert codes_and_paths(findings) == [("missing_field", "$.payload")]


@pytest.mark.parametrize(("payload", "got"), [([], "array"), (None, "null"), ("{}", "string")])
def test_payload_not_an_object(payload: object, got: str) -> None:
    findings = validate_event({"type": "audio.started", "payload": payload})
    assert codes_and_paths(findings) == [("payload_not_object", "$.payload")]
    assert findings[0].message.endswith(f"got {got}")


def test_payload_is_checked_for_shape_even_when_the_type_is_unknown() -> None:
    findings = validate_event({"type": "video.finished", "payload": 3})
    assert codes_and_paths(findings) == [
        ("unknown_event_type", "$.type"),
        ("payload_not_object", "$.payload"),
    ]


def test_missing_field_inside_a_download() -> None:
    event = build_fixture("video.completed", now=NOW)
    del event["payload"]["downloads"][0]["expires_at"]
    findings = validate_event(event)
    assert findings == [
        Finding(
            "$.payload.downloads[0].expires_at",
            "missing_field",
            "required field 'expires_at' is missing",
        )
    ]


def test_wrong_type_inside_a_download() -> None:
    event = build_fixture("image.completed", now=NOW)
    event["payload"]["downloads"].append({"url": 5, "expires_at": "2024-10-20T05:15:45.123Z"})
    findings = validate_event(event)
    assert findings == [
        Finding("$.payload.downloads[1].url", "wrong_type", "expected string, got integer")
    ]


def test_wrong_type_for_a_nullable_field_says_null_is_allowed() -> None:
    event = build_fixture("video.errored", now=NOW)
    event["payload"]["error"] = "invalid_video_file"
    findings = validate_event(event)
    assert findings == [
        Finding("$.payload.error", "wrong_type", "expected object or null, got string")
    ]


def test_null_for_a_non_nullable_field() -> None:
    event = build_fixture("audio.completed", now=NOW)
    event["payload"]["credits_charged"] = None
    findings = validate_event(event)
    assert findings == [
        Finding(
            "$.payload.credits_charged",
            "wrong_type",
            "expected integer, got null (this field is not nullable)",
        )
    ]


def test_unknown_enum_value_lists_the_allowed_ones() -> None:
    event = build_fixture("video.completed", now=NOW)
    event["payload"]["status"] = "completed"
    findings = validate_event(event)
    assert findings == [
        Finding(
            "$.payload.status",
            "unknown_enum_value",
            "'completed' is not a valid status; "
            "allowed: draft, queued, rendering, complete, error, canceled",
        )
    ]


def test_enum_field_with_a_non_string_is_a_type_error() -> None:
    event = build_fixture("video.completed", now=NOW)
    event["payload"]["status"] = 3
    findings = validate_event(event)
    assert codes_and_paths(findings) == [("wrong_type", "$.payload.status")]
    assert findings[0].message.startswith("expected string (one of draft, queued")


def test_several_problems_are_all_reported() -> None:
    event = build_fixture("video.completed", now=NOW)
    del event["payload"]["fps"]
    event["payload"]["width"] = "512"
    event["payload"]["downloads"][0]["url"] = None
    assert sorted(codes_and_paths(validate_event(event))) == [
        ("missing_field", "$.payload.fps"),
        ("wrong_type", "$.payload.downloads[0].url"),
        ("wrong_type", "$.payload.width"),
    ]


# --- raw bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_valid_body_bytes_and_text(event_type: str) -> None:
    body = json.dumps(build_fixture(event_type, now=NOW), separators=(",", ":"))
    assert validate_body(body.encode()) == []
    assert validate_body(body) == []


def test_not_utf8_says_where() -> None:
    findings = validate_body(b'{"type": "video.started\xff"}')
    assert findings == [Finding("$", "not_utf8", "body is not valid UTF-8: byte 0xff at offset 23")]


def test_utf16_json_is_not_utf8_even_though_json_loads_would_accept_it() -> None:
    body = json.dumps(build_fixture("video.started", now=NOW)).encode("utf-16")
    assert codes_and_paths(validate_body(body)) == [("not_utf8", "$")]


@pytest.mark.parametrize(
    ("body", "in_message"),
    [
        (b'{"type": "video.started",', "line 1"),
        (b"", "empty"),
        (b"  \n", "empty"),
        (b'\xef\xbb\xbf{"type": "video.started"}', "BOM"),
        (b'{"type": "video.started", "payload": NaN}', "NaN"),
        (b"[" * 100_000, "too deeply"),
    ],
)
def test_invalid_json(body: bytes, in_message: str) -> None:
    findings = validate_body(body)
    assert codes_and_paths(findings) == [("invalid_json", "$")]
    assert in_message in findings[0].message
    assert "\n" not in findings[0].message


def test_deep_nesting_reads_as_the_stdlib_reads_it() -> None:
    """orjson reads 1,010 levels; json.loads refuses them up to Python 3.11 (its C parser
    shares Python's recursion limit). Whatever this Python's stdlib does, parse_body must do
    the same, or what walks the document afterwards (-v, events show) could fail on it."""
    depth = 1010
    body = b"[" * depth + b"]" * depth
    try:
        json.loads(body)
    except RecursionError:
        stdlib_reads_it = False
    else:
        stdlib_reads_it = True
    document, findings = parse_body(body)
    assert (document is not None) is stdlib_reads_it
    expected = [] if stdlib_reads_it else [("invalid_json", "$")]
    assert codes_and_paths(findings) == expected


def test_integers_beyond_64_bits_stay_integers() -> None:
    huge = 2**64 * 10
    document, _ = parse_body(b'{"credits_charged":%d,"low":-%d}' % (huge, huge))
    assert document == {"credits_charged": huge, "low": -huge}
    assert isinstance(document["credits_charged"], int)


def test_body_that_is_json_but_not_an_event() -> None:
    assert codes_and_paths(validate_body(b'"video.started"')) == [("not_an_object", "$")]


def test_json_type_names() -> None:
    values: list[object] = [None, True, 1, 1.5, "s", [], {}]
    assert [json_type_name(value) for value in values] == [
        "null",
        "boolean",
        "integer",
        "number",
        "string",
        "array",
        "object",
    ]


# --- properties -----------------------------------------------------------------------------


def _assert_well_formed(findings: list[Finding]) -> None:
    for finding in findings:
        assert finding.code in FINDING_CODES
        assert finding.path.startswith("$")
        assert finding.message
        assert "\n" not in finding.message


@given(st.binary(max_size=512))
def test_validate_body_never_raises_on_arbitrary_bytes(body: bytes) -> None:
    _assert_well_formed(validate_body(body))


def _json_trees(numbers: st.SearchStrategy[float]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | numbers | st.text(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )


_json_values = _json_trees(st.floats(allow_nan=False))
_json_documents = _json_trees(st.floats(allow_nan=False, allow_infinity=False))
"""What JSON itself can carry: json.dumps writes infinity as Infinity, which is not JSON."""
# Python callers can build what JSON cannot: non-string keys and tuples.
_python_values = st.recursive(
    _json_values,
    lambda children: (
        st.tuples(children)
        | st.dictionaries(st.integers() | st.tuples(st.integers()), children, max_size=3)
    ),
    max_leaves=10,
)


@given(_json_values)
def test_validate_event_never_raises_on_arbitrary_json(value: object) -> None:
    _assert_well_formed(validate_event(value))
    _assert_well_formed(validate_body(json.dumps(value)))


@given(st.sampled_from(EVENT_TYPES), st.data(), _python_values)
def test_validate_event_never_raises_on_python_only_values(
    event_type: str, data: st.DataObject, value: object
) -> None:
    event = build_fixture(event_type, now=NOW)
    field = data.draw(st.sampled_from(sorted(event["payload"])))
    event["payload"][field] = value
    _assert_well_formed(validate_event(event))


def test_non_string_keys_are_extras_not_findings() -> None:
    event = build_fixture("video.completed", now=NOW)
    event["payload"][1] = "one"
    event["payload"]["downloads"][0][("a", "b")] = "pair"
    assert validate_event(event) == []


@given(
    st.sampled_from(EVENT_TYPES),
    st.data(),
    _json_values,
)
def test_findings_stay_at_the_field_that_was_changed(
    event_type: str, data: st.DataObject, value: object
) -> None:
    event = build_fixture(event_type, now=NOW)
    field = data.draw(st.sampled_from(sorted(event["payload"])))
    event["payload"][field] = value
    findings = validate_event(event)
    _assert_well_formed(findings)
    for finding in findings:
        assert finding.path == f"$.payload.{field}" or finding.path.startswith(
            (f"$.payload.{field}.", f"$.payload.{field}[")
        )


@given(_json_documents, st.booleans())
def test_bodies_parse_exactly_as_the_stdlib_reads_them(value: object, ascii_only: bool) -> None:
    """The fast parser (orjson) must never read a body otherwise than json.loads would."""
    body = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":")).encode()
    document, findings = parse_body(body)
    assert findings == []
    assert repr(document) == repr(json.loads(body))  # repr: 1 == 1.0 would hide a float


_ANY_TEXT = st.lists(
    st.characters() | st.sampled_from(["\ud800", "\udbff", "\udc00"]), max_size=4
).map("".join)
"""Text with lone surrogates too, which JSON carries as escapes (st.text() never draws one)."""
_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_ANY_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
_PAYLOAD_NODES = [(event_type, node) for event_type, node in TYPED_CASES if len(node.steps) > 1]
"""Every spec node inside a payload, of every event type."""
_GONE = object()
"""A mutation that deletes the node instead of replacing it."""


@given(
    st.booleans(),
    st.lists(
        st.tuples(
            st.sampled_from(_PAYLOAD_NODES),
            st.just(_GONE) | _ANY_JSON | st.floats() | st.integers(min_value=2**63),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_the_fast_conformance_check_answers_as_pydantic_does(
    from_fixture: bool, mutations: list[tuple[tuple[str, Node], object]]
) -> None:
    """validate_event answers "valid" by msgspec, without pydantic's model: held to pydantic's
    answer on payloads changed anywhere, in any JSON way, up to three places at once."""
    event_type = mutations[0][0][0]
    event = build_fixture(event_type, now=NOW) if from_fixture else full_sample(event_type)
    for (_, node), value in mutations:
        with contextlib.suppress(KeyError, IndexError, TypeError):  # an earlier change removed it
            event = (
                deleted(event, node.steps) if value is _GONE else replaced(event, node.steps, value)
            )
    model = catalog._PAYLOAD_MODELS[event_type.split(".")[0]]
    payload = event["payload"]
    by_pydantic = catalog._pydantic_findings(model, payload)
    assert catalog._conformance_check(model)(payload) == (by_pydantic == [])
    assert validate_event(event) == by_pydantic


@given(
    st.sampled_from(EVENT_TYPES),
    st.booleans(),
    st.dictionaries(_ANY_TEXT, _ANY_JSON, min_size=1, max_size=3),
    st.sampled_from(["payload", "download", "error"]),
)
def test_the_fast_conformance_check_answers_as_pydantic_with_any_extra_keys(
    event_type: str, from_fixture: bool, extras: dict[str, object], where: str
) -> None:
    """Unknown keys, lone surrogates in them included ({"\\ud800":1} is valid JSON), in the
    payload or an object inside it, read from the body as a listener reads it. msgspec raised
    UnicodeEncodeError on such a key, and the listener answered 500 without storing."""
    event = build_fixture(event_type, now=NOW) if from_fixture else full_sample(event_type)
    target = event["payload"]
    if isinstance(target.get(where), dict):
        target = target[where]
    target.update(extras)
    document, findings = parse_body(json.dumps(event).encode())
    assert findings == []
    model = catalog._PAYLOAD_MODELS[event_type.split(".")[0]]
    by_pydantic = catalog._pydantic_findings(model, document["payload"])
    assert validate_event(document) == by_pydantic
