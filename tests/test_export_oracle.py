"""``mhw events export`` writes exactly what the plain, one-row-at-a-time path writes.

The export renders a chunk of rows with orjson and checks the chunk once
(``report/events._chunk_text``), unpacks each row by position, shares cached pieces
between HAR entries and reads the forwards only when the store has any: each of those
is a way to write other bytes than before. The oracle here is the definition, written
out independently: each JSON line is ``dumps(detail_json(row))`` and each HAR entry is
the plain dict below, through :func:`mh_webhook_cli.core.json_text.dumps`, for rows
made to break a shortcut.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from test_listen import Start, event_body, signed_headers
from test_listen import start_listener as start_listener  # the fixture, shared

from conftest import SECRET, Mhw, wait_for
from mh_webhook_cli import __version__
from mh_webhook_cli.core.json_text import dumps
from mh_webhook_cli.core.request import ForwardResult, Received
from mh_webhook_cli.core.times import utc_iso_ms
from mh_webhook_cli.errors import StoreError
from mh_webhook_cli.receive.store import Store, StoredRow
from mh_webhook_cli.report.events import body_json, detail_json, export_store, summary_json

CONTROLS = "".join(chr(code) for code in range(32)) + "\x7f"
AWKWARD = ['"quoted"', "back\\slash", CONTROLS, "caf\u00e9", "\u0085next\u2028line", "\u202e"]


def request(
    body: bytes,
    *,
    received_at: float = 1_764_609_000.5,
    target: str = "/hook",
    headers: list[tuple[str, str]] | None = None,
    event_type: str | None = "video.completed",
    project_id: str | None = "proj",
    verification: str = "ok",
    findings: list[Any] | None = None,
    client: str = "127.0.0.1:50000",
    method: str = "POST",
) -> Received:
    return Received.of(
        received_at=received_at,
        method=method,
        target=target,
        headers=headers if headers is not None else [("Host", "h:1"), ("Content-Type", "a/b")],
        body=body,
        client=client,
        event_type=event_type,
        project_id=project_id,
        verification=verification,
        findings=findings or [],
        answer=200 if verification == "ok" else 401,
    )


def adversarial() -> list[Received]:
    """Rows that each break one shortcut an export could take."""
    rows = [
        request(b'{"type":"video.completed"}'),
        request(b""),
        request(b"\xff\xfe not UTF-8"),
        request(b"\x00\x01\x1f\x7f nul, controls and DEL"),
        request(b'quote " backslash \\ slash / tab \t newline \n'),
        request("caf\u00e9 \u0085 \u2028 \u202e \U0001f600".encode()),
        request(b"{}", event_type=None, project_id=None),
        request(b"{}", event_type="\\ud800", project_id="\\udfff"),  # as the store escapes them
        request(b"x", findings=[{"path": "payload.id", "code": "missing", "message": 'a "b"'}]),
        request(b"x", verification="mismatch"),
        request(b"x", received_at=0.0),
        request(b"x", received_at=1_764_609_000.9995),  # rounds up to the next second
        request(b"x", received_at=1_764_609_000.0004999),
        request(b"x", received_at=1_764_609_000.999_999_5),
        request(b"x", received_at=-1.25),
        request(b"x", received_at=253_402_300_799.999),  # the last millisecond of 9999
        request(b"x", target="/h?a=1&b=&c=%C3%A9&d=%ff#frag", method="PUT"),
        request(b"x", target="/\x7f\x85caf\u00e9"),
        request(b"x", headers=[]),
        request(b"x", headers=[("HOST", "first"), ("host", "second"), ("CONTENT-TYPE", "c/d")]),
        request(b"x", headers=[(name, name) for name in AWKWARD]),
        # Brackets, commas and quotes inside names and values, where the HAR export reads
        # the stored text by its punctuation.
        request(b"x", headers=[("X-A", "a[["), ("], [", "],["), ("", ""), ("Host", 'h"]]')]),
        request(b"x", headers=[("X C", "v,w"), ("Content-Type", "[[x]]"), ("HOST", " h ")]),
        request(b"x", client="[::1]:9", method="M\u00e9"),
    ]
    rows += [request(text.encode(), event_type=text, project_id=text) for text in AWKWARD]
    rows.append(request(b'{"type":"video.completed"}'))  # a retry of the first
    return rows


def reference_har_entry(row: StoredRow) -> dict[str, Any]:
    """A HAR entry as plain dicts, the way the export wrote it before it was made fast."""
    headers = json.loads(row.headers)
    by_name = {name.lower(): value for name, value in headers}
    body = body_json(row.body)
    post_data: dict[str, Any] = {"mimeType": by_name.get("content-type", ""), "text": body["body"]}
    if body["body_base64"]:
        post_data["comment"] = "base64: the body is not UTF-8"
    query = parse_qsl(urlsplit(row.path).query, keep_blank_values=True)
    return {
        "startedDateTime": utc_iso_ms(row.received_at),
        "time": 0,
        "request": {
            "method": row.method,
            "url": f"http://{by_name.get('host', 'localhost')}{row.path}",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": name, "value": value} for name, value in headers],
            "queryString": [{"name": name, "value": value} for name, value in query],
            "postData": post_data,
            "headersSize": -1,
            "bodySize": len(row.body),
            "comment": f"mhw request {row.id}: signature {row.verification}",
        },
        "response": {
            "status": row.response_status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": ""},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
    }


def expected(store_path: Path) -> tuple[str, str]:
    """The JSON lines and the HAR document of the store, one row at a time."""
    with Store(store_path) as store:
        rows = list(store.rows(oldest_first=True))
    lines = "".join(dumps(detail_json(row)) + "\n" for row in rows)
    creator = json.dumps({"name": "mhw", "version": __version__})
    entries = ",".join(dumps(reference_har_entry(row)) for row in rows)
    har = '{"log": {"version": "1.2", "creator": ' + creator + ', "entries": [' + entries
    return lines, har + "]}}\n"


def exported(mhw: Mhw, store_path: Path) -> tuple[str, str]:
    env = {"MHW_STORE": str(store_path)}
    lines = mhw("events", "export", env=env)
    har = mhw("events", "export", "--format", "har", env=env)
    assert (lines.code, har.code, lines.stderr, har.stderr) == (0, 0, "", "")
    return lines.stdout, har.stdout


def test_export_writes_what_the_row_by_row_path_writes(mhw: Mhw, tmp_path: Path) -> None:
    """Every awkward row, alone in its chunk and among plain ones, with and without forwards."""
    store_path = tmp_path / "events.sqlite3"
    plain = [request(b'{"n":%d}' % n, received_at=1_764_609_001 + n / 7) for n in range(40)]
    with Store(store_path) as store:
        receipts = store.add_many([*adversarial(), *plain])
    lines, har = exported(mhw, store_path)
    assert (lines, har) == expected(store_path)
    assert len(lines.splitlines()) == len(receipts)
    by_id = {line["id"]: line for line in map(json.loads, lines.splitlines())}
    assert by_id[receipts[-len(plain) - 1].id]["retry_of"] == receipts[0].id

    forward: ForwardResult = {
        "target": "http://127.0.0.1:9/\u00e9",
        "status": None,
        "latency_ms": 1.5,
        "error": 'refused "x"',
        "body": None,
    }
    with Store(store_path) as store:
        answered: ForwardResult = {**forward, "status": 200}
        store.add_forwards([(receipts[3].id, forward), (receipts[3].id, answered)])
        store.add_forwards([(receipts[-1].id, forward)])
    lines, har = exported(mhw, store_path)
    assert (lines, har) == expected(store_path)
    listed = mhw("events", "list", "--all", "--format", "json", env={"MHW_STORE": str(store_path)})
    with Store(store_path) as store:
        newest_first = ",".join(dumps(summary_json(row)) for row in store.rows())
    assert (listed.code, listed.stdout) == (0, f"[{newest_first}]\n")
    forwarded = {line["id"]: line["forwards"] for line in map(json.loads, lines.splitlines())}
    assert [len(forwards) for forwards in forwarded.values()].count(0) == len(receipts) - 2
    assert forwarded[receipts[3].id][1]["status"] == 200


@pytest.mark.parametrize("column", ["response_status", "retry_of", "findings", "received_at"])
def test_a_row_another_program_wrote_exports_as_the_plain_path_exports_it(
    mhw: Mhw, tmp_path: Path, column: str
) -> None:
    """A column of another type than mhw writes (SQLite lets any program write one) comes
    out as the row-by-row path writes it, and so do the rows beside it."""
    store_path = tmp_path / "events.sqlite3"
    with Store(store_path) as store:
        store.add_many([request(b"before"), request(b"odd"), request(b"after")])
    odd = {"response_status": "'200'", "retry_of": "'one'", "findings": "x'5b5d'"}
    value = odd.get(column, "1764609000")  # an integer time, where mhw stores a float
    with sqlite3.connect(store_path) as connection:
        connection.execute(f"UPDATE requests SET {column} = {value} WHERE id = 2")  # noqa: S608
    lines, har = exported(mhw, store_path)
    assert (lines, har) == expected(store_path)


def test_what_a_listener_stored_exports_as_the_plain_path_exports_it(
    start_listener: Start, mhw: Mhw
) -> None:
    """Requests from a real socket: signed, forged, unsigned, a retry, raw bytes, a query."""
    listening = start_listener("--secret", SECRET)
    body = event_body()
    sent = [
        (body, signed_headers(body)),
        (body, signed_headers(body)),
        (body, signed_headers(body, "someone-else")),
        (b"\xff\x00 binary", {"Content-Type": "application/octet-stream"}),
        ('{"type":"caf\u00e9.\u202e"}'.encode(), {"X-Quote": '"\\'}),
    ]
    for content, headers in sent:
        answer = httpx.post(f"{listening.url}?a=1&b=%20", content=content, headers=headers)
        assert answer.status_code in (200, 401)
    assert listening.stop() == 0
    assert len(listening.stored()) == len(sent)
    lines, har = exported(mhw, listening.store)
    assert (lines, har) == expected(listening.store)


def split_export(store_path: Path, *, har: bool, split_rows: int) -> str:
    """The export as two processes write it, whatever the store's size."""
    out = io.BytesIO()
    export_store(store_path, out, har=har, split_rows=split_rows, split_from_rows=0)
    return out.getvalue().decode()


@pytest.mark.parametrize("split_rows", [1, 2, 7, 1000])
def test_an_export_split_between_two_processes_writes_every_row_once_in_order(
    tmp_path: Path, split_rows: int
) -> None:
    """Ranges of every size against the adversarial rows, and requests with forwards:
    one row a range, ranges that end inside a run of equal times, one range for all."""
    store_path = tmp_path / "events.sqlite3"
    with Store(store_path) as store:
        receipts = store.add_many(adversarial() * 3)
        forward: ForwardResult = {
            "target": "http://127.0.0.1:9/",
            "status": 502,
            "latency_ms": None,
            "error": None,
            "body": "caf\u00e9",
        }
        store.add_forwards([(receipts[5].id, forward), (receipts[-1].id, forward)])
    lines, har = expected(store_path)
    assert split_export(store_path, har=False, split_rows=split_rows) == lines
    assert split_export(store_path, har=True, split_rows=split_rows) == har
    assert len(lines.splitlines()) == len(receipts)


def test_the_command_splits_a_large_export_and_writes_what_one_process_writes(
    mhw: Mhw, tmp_path: Path
) -> None:
    """25,000 requests: past the size from which ``mhw events export`` forks a helper."""
    store_path = tmp_path / "events.sqlite3"
    awkward = adversarial()
    with Store(store_path) as store:
        store.add_many(
            [
                request(b'{"n":%d}' % n, received_at=1_764_609_000 + n // 3)
                if n % 1000
                else awkward[n // 1000 % len(awkward)]
                for n in range(25_000)
            ]
        )
    assert exported(mhw, store_path) == expected(store_path)


def test_a_reader_that_stops_early_stops_both_processes(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    """``mhw events export | head``: the command ends, and its helper with it."""
    store_path = tmp_path / "events.sqlite3"
    with Store(store_path) as store:
        store.add_many([request(b"x" * 2000, received_at=float(n)) for n in range(30_000)])
    command = [sys.executable, "-m", "mh_webhook_cli", "events", "export"]
    exporting = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**isolated_env, "MHW_STORE": str(store_path)},
    )
    assert exporting.stdout is not None
    assert exporting.stdout.read(100_000)
    helpers = wait_for_helper(exporting.pid)
    exporting.stdout.close()
    exporting.wait(timeout=30)
    for helper in helpers:
        deadline = time.monotonic() + 30
        while _alive(helper):
            assert time.monotonic() < deadline, "the helper outlived the command"
            time.sleep(0.02)


def wait_for_helper(parent: int) -> list[int]:
    """The forked helper of process ``parent`` (it forks before writing its first range)."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [int(pid) for pid in children.read_text().split()]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("no helper process")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie has ended; its parent has not reaped it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_a_helper_that_fails_fails_the_export_with_its_reason(tmp_path: Path) -> None:
    """A row the helper cannot render (a body another program stored as text) ends the
    export with the helper's reason, and leaves no process behind."""
    store_path = tmp_path / "events.sqlite3"
    with Store(store_path) as store:
        store.add_many([request(b"x", received_at=float(n)) for n in range(20)])
    with sqlite3.connect(store_path) as connection:  # ranges of 3: the helper renders 4-6
        connection.execute("UPDATE requests SET body = 'text' WHERE id = 5")
    children = Path(f"/proc/self/task/{os.getpid()}/children")
    before = children.read_text()
    # Again and again: the helper may be gone before its first range is read (its reason
    # was then lost for "the helper process stopped", one run in a hundred).
    for _ in range(20):
        with pytest.raises(StoreError) as failed:
            split_export(store_path, har=False, split_rows=3)
        assert str(failed.value) == (
            "a stored request is not as mhw writes it: 'str' object has no attribute 'decode'"
        )
    assert children.read_text() == before


INSERTER = """
import sys, time
from pathlib import Path
from mh_webhook_cli.core.request import Received
from mh_webhook_cli.receive.store import Store

with Store(Path(sys.argv[1])) as store:
    n = 0
    while True:
        n += 1
        store.add(Received.of(1e9 + n, "POST", "/", [], b"new", "c", None, None, "ok", [], 200))
        if n == 1:
            Path(sys.argv[2]).touch()
"""


def test_a_split_export_beside_a_writer_writes_each_row_once_in_order(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    """While another process stores requests, as a listener does: every request stored
    before the export is in it once, everything is in time order, and nothing repeats."""
    store_path = tmp_path / "events.sqlite3"
    with Store(store_path) as store:
        before = [
            r.id for r in store.add_many([request(b"x", received_at=n / 3) for n in range(3000)])
        ]
    started = tmp_path / "started"
    writer = subprocess.Popen(
        [sys.executable, "-c", INSERTER, str(store_path), str(started)], env=isolated_env
    )
    try:
        wait_for(started.exists, what="the writer's first row")
        lines = split_export(store_path, har=False, split_rows=50).splitlines()
    finally:
        writer.kill()
        writer.wait()
    written = [json.loads(line) for line in lines]
    ids = [line["id"] for line in written]
    assert len(ids) == len(set(ids))
    assert set(before) <= set(ids)
    order = [(line["received_at"], line["id"]) for line in written]
    assert order == sorted(order)
