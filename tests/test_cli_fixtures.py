"""``mhw fixtures`` through the command line."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from conftest import Mhw
from mh_webhook_cli.core.catalog import EVENT_TYPES


def test_list_names_all_nine_events(mhw: Mhw) -> None:
    listing = json.loads(mhw("fixtures", "list", "--format", "json").stdout)
    assert [item["event"] for item in listing] == list(EVENT_TYPES)
    assert all(item["project_type"] and item["description"] for item in listing)
    text = mhw("fixtures", "list").stdout
    assert all(event in text for event in EVENT_TYPES)


@pytest.mark.parametrize("event", EVENT_TYPES)
def test_show_prints_a_valid_event_that_validate_accepts(mhw: Mhw, event: str) -> None:
    shown = mhw("fixtures", "show", event, "--format", "json")
    assert shown.code == 0
    compact = shown.stdout.rstrip("\n")
    document = json.loads(compact)
    assert compact == json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    assert document["type"] == event
    checked = mhw("fixtures", "validate", "-", input=shown.stdout)
    assert checked.code == 0 and "valid" in checked.stdout


def test_show_applies_id_error_code_and_overrides(mhw: Mhw) -> None:
    result = mhw(
        "fixtures",
        "show",
        "video.errored",
        "--id",
        "clxmyproject000000000000001",
        "--error-code",
        "file_too_large",
        "--set",
        "payload.error.message=too big",
        "--set",
        "payload.downloads=[]",
        "-f",
        "json",
    )
    payload = json.loads(result.stdout)["payload"]
    assert payload["id"] == "clxmyproject000000000000001"
    assert payload["error"] == {"code": "file_too_large", "message": "too big"}


def test_completed_downloads_expire_after_now(mhw: Mhw) -> None:
    payload = json.loads(mhw("fixtures", "show", "audio.completed", "-f", "json").stdout)["payload"]
    expires = datetime.fromisoformat(payload["downloads"][0]["expires_at"].replace("Z", "+00:00"))
    assert expires > datetime.now(timezone.utc)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "video.finished"], "unknown event 'video.finished'"),
        (["show", "audio.errored", "--error-code", "no_source_face"], "no_source_face"),
        (["show", "video.started", "--set", "payload"], "payload"),
    ],
)
def test_show_usage_errors(mhw: Mhw, args: list[str], message: str) -> None:
    result = mhw("fixtures", *args)
    assert result.code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_validate_reports_findings_with_paths_and_exit_1(mhw: Mhw) -> None:
    event = json.loads(mhw("fixtures", "show", "image.completed", "-f", "json").stdout)
    del event["payload"]["id"]
    event["payload"]["status"] = "finished"
    result = mhw("fixtures", "validate", "--format", "json", input=json.dumps(event))
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    found = {(f["path"], f["code"]) for f in report["findings"]}
    assert ("$.payload.id", "missing_field") in found
    assert ("$.payload.status", "unknown_enum_value") in found
    text = mhw("fixtures", "validate", input=json.dumps(event))
    assert text.code == 1 and "$.payload.status" in text.stdout


def test_validate_invalid_json(mhw: Mhw) -> None:
    result = mhw("fixtures", "validate", "-f", "json", input=b"{not json")
    assert result.code == 1
    assert json.loads(result.stdout)["findings"][0]["code"] == "invalid_json"
