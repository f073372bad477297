"""Tests for the fixture builder and ``--set`` overrides."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mh_webhook_cli.core.catalog import EVENT_TYPES, load_event_schemas, validate_event
from mh_webhook_cli.core.fixtures import (
    DOWNLOAD_LIFETIME,
    ERROR_CODES,
    FIXTURE_DESCRIPTIONS,
    apply_overrides,
    build_fixture,
)
from mh_webhook_cli.errors import OverrideError

NOW = datetime(2024, 10, 19, 5, 15, 45, 123000, tzinfo=timezone.utc)
CUID = re.compile(r"c[0-9a-z]{24}")
MAGIC_HOUR_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
STATUS_BY_ACTION = {"started": "rendering", "completed": "complete", "errored": "error"}

# Copied from the "Common error codes" lists of Magic Hour's event-types page.
DOCUMENTED_ERROR_CODES = {
    "video": [
        "invalid_video_file",
        "file_too_large",
        "insufficient_credits",
        "invalid_parameters",
        "processing_timeout",
    ],
    "image": [
        "no_source_face",
        "invalid_file_format",
        "file_too_large",
        "insufficient_credits",
        "invalid_parameters",
        "content_policy_violation",
    ],
    "audio": ["text_too_long", "invalid_voice", "insufficient_credits", "processing_timeout"],
}
ERRORED_CASES = [
    (f"{kind}.errored", code) for kind, codes in DOCUMENTED_ERROR_CODES.items() for code in codes
]


def parse_timestamp(text: str) -> datetime:
    assert MAGIC_HOUR_TIMESTAMP.fullmatch(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def project_types_listed_in_spec(event_type: str) -> list[str]:
    """The spec lists project types only in prose: "Possible values are A, B, C"."""
    payload = load_event_schemas()[event_type]["properties"]["payload"]
    description = payload["properties"]["type"]["description"]
    listed = description.split("Possible values are ", 1)[1]
    return [value.strip() for value in listed.rstrip(".").split(",")]


# --- build_fixture ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_fixture_shape(event_type: str) -> None:
    kind, action = event_type.split(".")
    event = build_fixture(event_type, now=NOW)
    payload = event["payload"]
    assert list(event) == ["type", "payload"]
    assert event["type"] == event_type
    assert CUID.fullmatch(payload["id"])
    assert payload["status"] == STATUS_BY_ACTION[action]
    assert payload["enabled"] is True
    assert payload["name"]
    assert parse_timestamp(payload["created_at"]) < NOW
    assert payload["type"] in project_types_listed_in_spec(event_type)
    assert payload["type"] == FIXTURE_DESCRIPTIONS[event_type][0]
    assert (payload["error"] is not None) == (action == "errored")
    assert (payload["downloads"] != []) == (action == "completed")
    # Magic Hour refunds failed jobs, and the payload shows the refunded amount.
    assert (payload["credits_charged"] == 0) == (action == "errored")
    if kind == "video":
        assert payload["width"] > 0
        assert payload["height"] > 0


def test_fixture_keys_follow_the_spec_order() -> None:
    for event_type in EVENT_TYPES:
        spec_order = list(load_event_schemas()[event_type]["properties"]["payload"]["properties"])
        assert list(build_fixture(event_type, now=NOW)["payload"]) == spec_order


@pytest.mark.parametrize(
    ("event_type", "host", "extension"),
    [
        ("video.completed", "videos.magichour.ai", "mp4"),
        ("image.completed", "images.magichour.ai", "png"),
        ("audio.completed", "audio.magichour.ai", "mp3"),
    ],
)
def test_completed_downloads_expire_a_day_after_now(
    event_type: str, host: str, extension: str
) -> None:
    payload = build_fixture(event_type, now=NOW)["payload"]
    [download] = payload["downloads"]
    assert download["url"] == f"https://{host}/{payload['id']}/output.{extension}"
    expires_at = parse_timestamp(download["expires_at"])
    assert expires_at > NOW
    assert expires_at == NOW + DOWNLOAD_LIFETIME == NOW + timedelta(hours=24)


def test_timestamps_are_utc_with_milliseconds_whatever_the_timezone_of_now() -> None:
    paris_now = NOW.astimezone(timezone(timedelta(hours=2)))
    payload = build_fixture("video.completed", now=paris_now)["payload"]
    assert payload["downloads"][0]["expires_at"] == "2024-10-20T05:15:45.123Z"
    assert payload == build_fixture("video.completed", now=NOW)["payload"]


def test_video_deprecated_download_mirrors_the_first_download() -> None:
    completed = build_fixture("video.completed", now=NOW)["payload"]
    assert completed["download"] == completed["downloads"][0]
    assert completed["download"] is not completed["downloads"][0]
    assert build_fixture("video.started", now=NOW)["payload"]["download"] is None


def test_derived_id_encodes_the_creation_time_like_a_cuid() -> None:
    payload = build_fixture("video.completed", now=NOW)["payload"]
    created_at = parse_timestamp(payload["created_at"])
    assert int(payload["id"][1:9], 36) == int(created_at.timestamp() * 1000)


def test_same_arguments_same_event() -> None:
    for event_type in EVENT_TYPES:
        assert build_fixture(event_type, now=NOW) == build_fixture(event_type, now=NOW)


def test_ids_differ_across_event_types_and_times() -> None:
    ids = {build_fixture(event_type, now=NOW)["payload"]["id"] for event_type in EVENT_TYPES}
    assert len(ids) == len(EVENT_TYPES)
    later = NOW + timedelta(milliseconds=1)
    assert (
        build_fixture("video.started", now=later)["payload"]["id"]
        != build_fixture("video.started", now=NOW)["payload"]["id"]
    )


def test_explicit_project_id_is_used_everywhere() -> None:
    payload = build_fixture("image.completed", project_id="cmyproject0000000000000001", now=NOW)[
        "payload"
    ]
    assert payload["id"] == "cmyproject0000000000000001"
    assert payload["downloads"][0]["url"] == (
        "https://images.magichour.ai/cmyproject0000000000000001/output.png"
    )


def test_error_codes_are_the_documented_ones() -> None:
    assert {kind: list(codes) for kind, codes in ERROR_CODES.items()} == DOCUMENTED_ERROR_CODES


@pytest.mark.parametrize(("event_type", "code"), ERRORED_CASES)
def test_errored_fixture_with_each_documented_code(event_type: str, code: str) -> None:
    event = build_fixture(event_type, error_code=code, now=NOW)
    error = event["payload"]["error"]
    assert error["code"] == code
    assert error["message"] == ERROR_CODES[event_type.split(".")[0]][code]
    assert validate_event(event) == []


@pytest.mark.parametrize("kind", ["video", "image", "audio"])
def test_errored_fixture_defaults_to_the_first_documented_code(kind: str) -> None:
    error = build_fixture(f"{kind}.errored", now=NOW)["payload"]["error"]
    assert error["code"] == DOCUMENTED_ERROR_CODES[kind][0]


def test_error_code_of_another_kind_is_refused_with_the_allowed_list() -> None:
    with pytest.raises(ValueError, match="'no_source_face' is not a documented audio") as raised:
        build_fixture("audio.errored", error_code="no_source_face", now=NOW)
    for code in DOCUMENTED_ERROR_CODES["audio"]:
        assert code in str(raised.value)


def test_error_code_on_a_non_errored_event_is_refused() -> None:
    with pytest.raises(ValueError, match=r"only to video\.errored"):
        build_fixture("video.completed", error_code="file_too_large", now=NOW)


def test_unknown_event_type_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'video\.finished'.*audio\.errored"):
        build_fixture("video.finished", now=NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_fixture("video.started", now=datetime(2024, 10, 19, 5, 15, 45))


def test_empty_project_id_is_refused() -> None:
    with pytest.raises(ValueError, match="project_id"):
        build_fixture("video.started", project_id="", now=NOW)


def test_descriptions_cover_every_event_in_order() -> None:
    assert list(FIXTURE_DESCRIPTIONS) == list(EVENT_TYPES)
    for project_type, summary in FIXTURE_DESCRIPTIONS.values():
        assert project_type
        assert summary
        assert "\n" not in summary


@given(
    st.sampled_from(EVENT_TYPES),
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-7, minutes=-30))]),
    ),
)
def test_any_moment_gives_a_valid_event(event_type: str, now: datetime) -> None:
    event = build_fixture(event_type, now=now)
    assert validate_event(event) == []
    assert CUID.fullmatch(event["payload"]["id"])
    assert parse_timestamp(event["payload"]["created_at"]) <= now
    for download in event["payload"]["downloads"]:
        assert parse_timestamp(download["expires_at"]) > now


# --- apply_overrides --------------------------------------------------------------------------


def test_override_a_top_level_payload_field_with_a_plain_string() -> None:
    event = build_fixture("video.started", now=NOW)
    changed = apply_overrides(event, ["payload.status=error"])
    assert changed["payload"]["status"] == "error"
    assert changed["payload"]["id"] == event["payload"]["id"]


def test_override_a_nested_field_with_a_json_string() -> None:
    event = build_fixture("video.errored", now=NOW)
    changed = apply_overrides(event, ['payload.error.code="file_too_large"'])
    assert changed["payload"]["error"] == {
        "code": "file_too_large",
        "message": event["payload"]["error"]["message"],
    }


def test_override_inside_a_list_item() -> None:
    event = build_fixture("video.completed", now=NOW)
    changed = apply_overrides(event, ["payload.downloads[0].url=https://x.example/a.mp4?s=1"])
    assert changed["payload"]["downloads"][0] == {
        "url": "https://x.example/a.mp4?s=1",
        "expires_at": event["payload"]["downloads"][0]["expires_at"],
    }
    # The deprecated mirror is a separate object and stays as it was.
    assert changed["payload"]["download"] == event["payload"]["download"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1024", 1024),
        ("2.5", 2.5),
        ("null", None),
        ("true", True),
        ("[]", []),
        ('{"code": "x"}', {"code": "x"}),
        ('"1024"', "1024"),
        ("rendering", "rendering"),
        ("", ""),
        ("a=b", "a=b"),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
        ("1e999", "1e999"),
        ("[1, 2", "[1, 2"),
    ],
)
def test_value_is_json_when_it_parses_and_a_string_otherwise(raw: str, expected: Any) -> None:
    changed = apply_overrides(build_fixture("audio.started", now=NOW), [f"payload.name={raw}"])
    assert changed["payload"]["name"] == expected
    assert type(changed["payload"]["name"]) is type(expected)


def test_missing_and_null_intermediate_objects_are_created() -> None:
    event = build_fixture("video.started", now=NOW)
    assert event["payload"]["error"] is None
    changed = apply_overrides(
        event,
        [
            "payload.error.code=file_too_large",
            "payload.error.message=Too big",
            "payload.meta.source.tool=mhw",
        ],
    )
    assert changed["payload"]["error"] == {"code": "file_too_large", "message": "Too big"}
    assert changed["payload"]["meta"] == {"source": {"tool": "mhw"}}


def test_replacing_a_whole_list_and_adding_top_level_keys() -> None:
    event = build_fixture("image.completed", now=NOW)
    changed = apply_overrides(event, ["payload.downloads=[]", "attempt=2"])
    assert changed["payload"]["downloads"] == []
    assert changed["attempt"] == 2


def test_paths_pasted_from_findings_work() -> None:
    event = build_fixture("video.completed", now=NOW)
    changed = apply_overrides(event, ["$.payload.downloads[0].expires_at=soon"])
    assert changed["payload"]["downloads"][0]["expires_at"] == "soon"


def test_assignments_apply_in_order() -> None:
    changed = apply_overrides(
        build_fixture("video.started", now=NOW), ["payload.fps=24", "payload.fps=60"]
    )
    assert changed["payload"]["fps"] == 60


def test_overrides_do_not_mutate_the_input() -> None:
    event = build_fixture("video.completed", now=NOW)
    before = copy.deepcopy(event)
    apply_overrides(event, ["payload.downloads[0].url=x", "payload.error.code=y", "type=z"])
    assert event == before


def test_overridden_event_can_be_validated_like_any_other() -> None:
    event = apply_overrides(
        build_fixture("video.started", now=NOW), ["payload.status=finished", "payload.width=wide"]
    )
    assert sorted((f.code, f.path) for f in validate_event(event)) == [
        ("unknown_enum_value", "$.payload.status"),
        ("wrong_type", "$.payload.width"),
    ]


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("payload.status", "expected PATH=VALUE"),
        ("=error", "the path before '=' is empty"),
        ("  =error", "the path before '=' is empty"),
        ("$.=error", "the path before '=' is empty"),
        ("payload..status=error", "invalid path 'payload..status'"),
        ("payload.downloads[x]=1", "invalid path"),
        ("payload.downloads[-1]=1", "invalid path"),
        ("payload.downloads[0=1", "invalid path"),
        ("payload.status[0]=x", "cannot use index [0] on payload.status: it is string"),
        ("payload.error[0]=x", "cannot use index [0] on payload.error: it is null"),
        ("payload.extra[0]=x", "cannot use index [0] on payload.extra: it is missing"),
        ("payload.downloads[0].url=x", "index [0] is out of range for payload.downloads"),
        ("payload.status.code=x", "cannot set key 'code' in payload.status: it is string"),
        ("payload.downloads.url=x", "cannot set key 'url' in payload.downloads: it is array"),
    ],
)
def test_malformed_assignments_raise_a_one_line_override_error(
    assignment: str, message: str
) -> None:
    event = build_fixture("video.started", now=NOW)
    with pytest.raises(OverrideError) as raised:
        apply_overrides(event, [assignment])
    assert isinstance(raised.value, ValueError)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_out_of_range_index_says_how_many_items_exist() -> None:
    event = build_fixture("video.completed", now=NOW)
    with pytest.raises(OverrideError, match=r"index \[1\] .* which has 1 item"):
        apply_overrides(event, ["payload.downloads[1].url=x"])


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)


@given(
    st.recursive(
        _json_scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_any_json_value_round_trips_through_an_override(value: Any) -> None:
    changed = apply_overrides(
        build_fixture("video.completed", now=NOW), [f"payload.downloads[0].url={json.dumps(value)}"]
    )
    assert changed["payload"]["downloads"][0]["url"] == value


@given(st.text().filter(lambda text: not _parses_as_json(text)))
def test_text_that_is_not_json_is_kept_verbatim(text: str) -> None:
    changed = apply_overrides(build_fixture("audio.started", now=NOW), [f"payload.name={text}"])
    assert changed["payload"]["name"] == text


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
