"""``mhw events`` driven as a user drives it, on a store filled through the library."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from conftest import SECRET, Mhw
from mh_webhook_cli.core.http_text import parse_request
from mh_webhook_cli.core.request import Received
from mh_webhook_cli.core.signing import sign
from mh_webhook_cli.receive.store import Store

BODY = b'{"type":"video.completed","payload":{"id":"proj-1","name":"Caf\xc3\xa9"}}'


def new(
    body: bytes = BODY,
    *,
    received_at: float | None = None,
    event_type: str | None = "video.completed",
    verification: str = "ok",
    headers: list[tuple[str, str]] | None = None,
    project_id: str = "proj-1",
) -> Received:
    return Received.of(
        received_at=time.time() if received_at is None else received_at,
        method="POST",
        target="/webhook?from=test",
        headers=headers
        or [
            ("Host", "localhost:8787"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ],
        body=body,
        client="127.0.0.1:50000",
        event_type=event_type,
        project_id=project_id if event_type else None,
        verification=verification,
        findings=[],
        answer=200 if verification == "ok" else 401,
    )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "capture" / "events.sqlite3"


@pytest.fixture
def env(store_path: Path) -> dict[str, str]:
    return {"MHW_STORE": str(store_path)}


def fill(store_path: Path, *requests: Received) -> list[int]:
    with Store(store_path) as store:
        return [receipt.id for receipt in store.add_many(requests)]


def test_list_of_a_store_that_does_not_exist_is_empty(
    mhw: Mhw, env: dict[str, str], store_path: Path
) -> None:
    text = mhw("events", "list", env=env)
    assert (text.code, text.stdout) == (0, "")
    assert f"nothing captured yet: no store at {store_path}" in text.stderr
    as_json = mhw("events", "list", "--format", "json", env=env)
    assert (as_json.code, json.loads(as_json.stdout), as_json.stderr) == (0, [], "")
    assert not store_path.exists()


def test_an_empty_or_cut_listing_says_so_on_stderr(
    mhw: Mhw, env: dict[str, str], store_path: Path
) -> None:
    """People are told why a listing is empty and that one is cut; stdout keeps only rows."""
    fill(store_path, *(new(received_at=1_800_000_000 + n) for n in range(3)))
    none = mhw("events", "list", "--type", "audio.*", env=env)
    assert (none.code, none.stdout) == (0, "")
    assert "no captured request matches" in none.stderr
    cut = mhw("events", "list", "--limit", "2", env=env)
    assert [line.split()[0] for line in cut.stdout.splitlines()[1:]] == ["3", "2"]
    assert "showing the newest 2: --limit N or --all for more" in cut.stderr
    for whole in (("--limit", "3"), ("--all",)):
        listed = mhw("events", "list", *whole, env=env)
        assert len(listed.stdout.splitlines()) == 4 and "for more" not in listed.stderr, whole
    as_json = mhw("events", "list", "--limit", "2", "--format", "json", env=env)
    assert [item["id"] for item in json.loads(as_json.stdout)] == [3, 2]


def test_list_text_and_json_newest_first_with_filters(
    mhw: Mhw, env: dict[str, str], store_path: Path
) -> None:
    now = time.time()
    old, image, bad = fill(
        store_path,
        new(b"1", received_at=now - 7200, event_type="video.started"),
        new(b"2", received_at=now - 60, event_type="image.completed", project_id="proj-2"),
        new(b"3", received_at=now - 30, verification="signature_mismatch"),
    )
    text = mhw("events", "list", env=env)
    assert text.code == 0
    rows = text.stdout.splitlines()
    assert rows[0].split()[:3] == ["id", "received", "event"]
    assert [row.split()[0] for row in rows[1:]] == [str(bad), str(image), str(old)]
    assert "signature_mismatch" in rows[1] and "401" in rows[1]

    def ids(*options: str) -> list[int]:
        result = mhw("events", "list", "--format", "json", *options, env=env)
        assert result.code == 0, result.stderr
        return [item["id"] for item in json.loads(result.stdout)]

    assert ids() == [bad, image, old]
    assert ids("--type", "video.*") == [bad, old]
    assert ids("--since", "30m") == [bad, image]
    assert ids("--invalid") == [bad]
    assert ids("--project", "proj-2") == [image]
    assert ids("-p", "proj-1", "--type", "video.*") == [bad, old]
    assert ids("--project", "proj-3") == []
    assert ids("--limit", "1") == [bad]
    assert ids("--limit", "1", "--all") == [bad, image, old]
    first = json.loads(mhw("events", "list", "-f", "json", env=env).stdout)[0]
    assert first["received_at"].endswith("Z")
    assert (first["valid"], first["verification"], first["body_bytes"]) == (
        False,
        "signature_mismatch",
        1,
    )
    assert set(first) >= {
        "method",
        "path",
        "event_type",
        "project_id",
        "findings",
        "forwards",
        "retry_of",
    }


def test_list_since_iso_and_bad_since(mhw: Mhw, env: dict[str, str], store_path: Path) -> None:
    fill(store_path, new(received_at=1_800_000_000.0), new(b"x", received_at=1_800_000_100.0))
    result = mhw("events", "list", "-f", "json", "--since", "2027-01-15T08:01:00Z", env=env)
    assert [item["body_bytes"] for item in json.loads(result.stdout)] == [1]
    bad = mhw("events", "list", "--since", "yesterday", env=env)
    assert bad.code == 2 and "--since" in bad.stderr


def test_store_option_overrides_the_environment(
    mhw: Mhw, tmp_path: Path, env: dict[str, str]
) -> None:
    other = tmp_path / "other.sqlite3"
    (row_id,) = fill(other, new())
    result = mhw("events", "list", "-f", "json", "--store", str(other), env=env)
    assert [item["id"] for item in json.loads(result.stdout)] == [row_id]


def test_show_text_and_json(mhw: Mhw, env: dict[str, str], store_path: Path) -> None:
    (row_id,) = fill(store_path, new())
    text = mhw("events", "show", str(row_id), env=env)
    assert text.code == 0
    assert "Content-Type: application/json" in text.stdout
    assert '  "name": "Café"' in text.stdout  # pretty-printed JSON body
    as_json = json.loads(mhw("events", "show", str(row_id), "-f", "json", env=env).stdout)
    assert as_json["headers"][0] == ["Host", "localhost:8787"]
    assert (as_json["body"].encode(), as_json["body_base64"]) == (BODY, False)


def test_show_json_of_a_binary_body_is_base64(
    mhw: Mhw, env: dict[str, str], store_path: Path
) -> None:
    binary = b"\xff\x00\xfe"
    (row_id,) = fill(store_path, new(binary, event_type=None))
    as_json = json.loads(mhw("events", "show", str(row_id), "-f", "json", env=env).stdout)
    assert as_json["body_base64"] is True
    assert base64.b64decode(as_json["body"]) == binary


def test_show_of_an_unknown_id_is_one_line_and_exit_2(
    mhw: Mhw, env: dict[str, str], store_path: Path
) -> None:
    for _ in range(2):  # a missing store, then a store without that id
        result = mhw("events", "show", "42", env=env)
        assert result.code == 2
        assert result.stderr.count("\n") == 1 and "no request 42" in result.stderr
        fill(store_path, new())


def test_show_raw_pipes_into_verify(mhw: Mhw, env: dict[str, str], store_path: Path) -> None:
    timestamp = int(time.time())
    headers = [
        ("Host", "localhost:8787"),
        ("Content-Type", "application/json"),
        ("Magic-Hour-Event-Signature", sign(SECRET, timestamp, BODY)),
        ("Magic-Hour-Event-Timestamp", str(timestamp)),
        ("Content-Length", str(len(BODY))),
    ]
    (row_id,) = fill(store_path, new(headers=headers))
    raw = mhw("events", "show", str(row_id), "--raw", env=env)
    assert raw.code == 0
    parsed, _ = parse_request(raw.stdout.encode())
    assert (parsed.body, parsed.headers, parsed.target) == (BODY, headers, "/webhook?from=test")
    verified = mhw("verify", "--request", "-", "--secret", SECRET, input=raw.stdout, env=env)
    assert verified.code == 0, verified.stdout + verified.stderr
    tampered = mhw("verify", "--request", "-", "--secret", "whsec_other", input=raw.stdout, env=env)
    assert tampered.code == 1


def test_show_raw_writes_exact_bytes_and_rechunks_a_chunked_request(
    isolated_env: dict[str, str], env: dict[str, str], store_path: Path
) -> None:
    binary = b"\x00\xff\r\n\x80 body"
    headers = [("Host", "h"), ("Transfer-Encoding", "chunked")]
    (row_id,) = fill(store_path, new(binary, event_type=None, headers=headers))
    completed = subprocess.run(
        [sys.executable, "-m", "mh_webhook_cli", "events", "show", str(row_id), "--raw"],
        capture_output=True,
        env={**isolated_env, **env},
        timeout=30,
        check=True,
    )
    parsed, _ = parse_request(completed.stdout)
    assert (parsed.body, parsed.headers) == (binary, headers)


def test_export_jsonl_oldest_first(
    mhw: Mhw, env: dict[str, str], store_path: Path, tmp_path: Path
) -> None:
    ids = fill(store_path, new(received_at=100.0), new(b"\xff", received_at=50.0, event_type=None))
    result = mhw("events", "export", env=env)
    assert result.code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == [ids[1], ids[0]]
    assert lines[1]["body"].encode() == BODY and lines[0]["body_base64"] is True
    output = tmp_path / "out.jsonl"
    written = mhw("events", "export", "--output", str(output), env=env)
    assert written.code == 0 and "Exported 2 requests" in written.stderr
    assert output.read_text(encoding="utf-8") == result.stdout


def test_export_har(mhw: Mhw, env: dict[str, str], store_path: Path) -> None:
    fill(store_path, new(received_at=100.0), new(b"2", received_at=200.0, verification="unsigned"))
    result = mhw("events", "export", "--format", "har", env=env)
    assert result.code == 0
    log = json.loads(result.stdout)["log"]
    assert log["version"] == "1.2"
    first, second = log["entries"]
    assert first["request"]["method"] == "POST"
    assert first["request"]["url"] == "http://localhost:8787/webhook?from=test"
    assert first["request"]["queryString"] == [{"name": "from", "value": "test"}]
    assert {"name": "Content-Type", "value": "application/json"} in first["request"]["headers"]
    assert first["request"]["postData"]["text"].encode() == BODY
    assert first["startedDateTime"] == "1970-01-01T00:01:40.000Z"
    assert (first["response"]["status"], second["response"]["status"]) == (200, 401)


def test_export_of_a_missing_store_is_empty(mhw: Mhw, env: dict[str, str]) -> None:
    assert mhw("events", "export", env=env).stdout == ""
    har = mhw("events", "export", "-f", "har", env=env)
    assert json.loads(har.stdout)["log"]["entries"] == []


def test_export_never_writes_over_its_store_and_a_failed_write_is_one_line(
    mhw: Mhw, env: dict[str, str], store_path: Path
) -> None:
    """Opening the output emptied a store given as its own --output, before a row was read,
    and a full disk was a traceback."""
    [stored] = fill(store_path, new())
    for target in (
        store_path,
        Path(f"{store_path}-wal"),
        store_path.parent / "." / "events.sqlite3",
    ):
        refused = mhw("events", "export", "-o", str(target), env=env)
        assert refused.code == 2, refused.stderr
        assert (
            refused.stderr
            == f"error: --output {target} is the capture store itself: write elsewhere\n"
        )
    listed = mhw("events", "list", "--format", "json", env=env)
    assert [item["id"] for item in json.loads(listed.stdout)] == [stored]
    if Path("/dev/full").exists():
        full = mhw("events", "export", "-o", "/dev/full", env=env)
        assert (full.code, full.stderr) == (
            1,
            "error: cannot write /dev/full: No space left on device\n",
        )


def test_a_row_another_program_wrote_is_one_line_in_every_view(
    mhw: Mhw, env: dict[str, str], store_path: Path
) -> None:
    fill(store_path, new(), new(b"2"))
    with sqlite3.connect(store_path) as connection:
        connection.execute("UPDATE requests SET received_at = 'late' WHERE id = 2")
    for command in (["export"], ["export", "-f", "har"]):
        result = mhw("events", *command, env=env)
        assert result.code == 1, (command, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "not as mhw writes it" in result.stderr


def test_clear_needs_yes_without_a_terminal(
    mhw: Mhw, env: dict[str, str], store_path: Path
) -> None:
    fill(store_path, new(), new(b"2"))
    refused = mhw("events", "clear", env=env)
    assert refused.code == 2 and "--yes" in refused.stderr
    with Store(store_path) as store:
        assert store.count() == 2
    cleared = mhw("events", "clear", "--yes", env=env)
    assert cleared.code == 0 and "Deleted 2 requests" in cleared.stderr
    with Store(store_path) as store:
        assert store.count() == 0


def test_listings_and_exports_hold_one_page_whatever_the_store_holds(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``events list --all --format json`` held every row at once: 3.7 GB at a million.

    The memory each takes with 80 requests and with 160 must be the same: a page.
    """
    from mh_webhook_cli.report.console import Format
    from mh_webhook_cli.report.events import export, show_list

    monkeypatch.setattr("mh_webhook_cli.receive.store.PAGE_BYTES", 256 * 1024)
    body = b"a" * (64 * 1024)
    outputs = {name: tmp_path / name for name in ("list.json", "export.jsonl", "export.har")}
    peaks: dict[str, list[int]] = {}
    for size in (80, 160):
        with Store(store_path) as store:
            store.add_many([new(body, received_at=float(n)) for n in range(size - 80, size)])
        with Store(store_path) as store:
            for name in outputs:
                tracemalloc.start()
                try:
                    with outputs[name].open("wb") as out:
                        if name == "list.json":
                            with monkeypatch.context() as patched:
                                patched.setattr(sys, "stdout", io.TextIOWrapper(out))
                                show_list(store.rows(), Format.JSON)
                        else:
                            pages = store.pages(oldest_first=True)
                            assert export(pages, out, har=name == "export.har") == size
                    peaks.setdefault(name, []).append(tracemalloc.get_traced_memory()[1])
                finally:
                    tracemalloc.stop()
    for name, (half, whole) in peaks.items():
        assert whole < 1.25 * half, f"{name}: {half / 1e6:.1f} MB, then {whole / 1e6:.1f} MB"
    listed = json.loads(outputs["list.json"].read_text())
    assert [item["body_bytes"] for item in listed] == [len(body)] * 160
    assert [item["id"] for item in listed] == list(range(160, 0, -1))
    lines = outputs["export.jsonl"].read_text().splitlines()
    assert [json.loads(line)["body"] for line in lines] == [body.decode()] * 160
    entries = json.loads(outputs["export.har"].read_text())["log"]["entries"]
    assert [entry["request"]["bodySize"] for entry in entries] == [len(body)] * 160


def test_a_long_listing_is_one_table_sized_by_its_first_page() -> None:
    """Later pages only widen a column they overflow; the header comes once."""
    from mh_webhook_cli.report.events import list_pages

    def stored(row_id: int, event_type: str) -> Received:
        return dataclasses.replace(new(event_type=event_type), id=row_id)

    requests = [stored(1000 - n, "video.completed") for n in range(5)]
    requests.append(stored(7, "video.a.much.longer.type"))
    pages = [[shown_plain(line) for line in page] for page in list_pages(requests, page_rows=3)]
    assert [len(page) for page in pages] == [3, 3, 1]  # the header and 6 rows, by threes
    assert pages[0][0].split()[:2] == ["id", "received"]
    lines = [line for page in pages for line in page]
    assert sum(line.startswith("id ") for line in lines) == 1
    received_at = lines[0].index("received")
    assert all(line[received_at].isdigit() for line in lines[1:])  # ids 995..7 padded alike
    event_at = lines[0].index("event")
    project_at = {line.index("proj-1") for line in lines[1:]}
    assert event_at < min(project_at) and len(project_at) == 2  # only the long type pushed


def shown_plain(line: object) -> str:
    return line if isinstance(line, str) else "".join(text for text, _ in line)  # type: ignore[attr-defined]
