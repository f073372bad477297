"""How stored requests look: list lines, details, JSON, raw HTTP, JSON lines and HAR.

Kept apart from :mod:`mh_webhook_cli.report.verify` so that ``mhw events`` and the
verification views can change independently; the same split applies here,
each ``*_text`` has its ``*_json`` next to it so the two cannot drift apart.
The ``show_*`` functions and :func:`export` decide between them, so that the
command only parses its options and reads the store.

Listings and exports stream: they take the store's rows as an iterator and write
a page at a time, so a million rows cost the memory of one page. The JSON views
read a :class:`~mh_webhook_cli.receive.store.StoredRow`, whose headers, findings
and forwards are JSON text as mhw stored it: it goes into the output as it is
(``orjson.Fragment``) instead of being parsed and written again, which was most
of an export's time.

What an export costs is Python turning rows into JSON (SQLite reads a million rows in
0.5 s of the ~5.5 s). So a chunk of rows is written by orjson and checked once
(:func:`_chunk_text`), and a large store is rendered by this process and a forked helper
in turn (:func:`export_store`, through :mod:`mh_webhook_cli.receive.export`). Building
the lines in SQL instead (``json_quote`` and ``||``, fetched as bytes) was measured and
is no cheaper: 5.7 s of CPU against 5.3 to 5.5 s for the Python path at a million rows.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from orjson import Fragment

from mh_webhook_cli import __version__
from mh_webhook_cli.core.http_text import format_request
from mh_webhook_cli.core.json_text import dumps
from mh_webhook_cli.core.request import ForwardResult, Received
from mh_webhook_cli.core.times import utc_iso_ms
from mh_webhook_cli.errors import StoreError
from mh_webhook_cli.receive.store import PAGE_ROWS, StoredRow
from mh_webhook_cli.report.console import Format, Line, Segment, columns, emit_json, info, show
from mh_webhook_cli.report.escape import screen_lines

if TYPE_CHECKING:
    from mh_webhook_cli.send.delivery import SendResult

_VERDICT_STYLES = {"ok": "green", "unsigned": "yellow", "unchecked": "dim"}


def local_time(timestamp: float) -> str:
    """The developer's own clock, which is what they compare with their handler's logs."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def body_json(body: bytes) -> dict[str, Any]:
    """The body as text when it is UTF-8, else as base64 with a flag saying so."""
    text, as_base64 = _body_text(body)
    return {"body": text, "body_base64": as_base64}


def _body_text(body: bytes) -> tuple[str, bool]:
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def summary_json(row: StoredRow) -> dict[str, Any]:
    """One request for ``mhw events list --format json``: everything but headers and body.

    The stored JSON columns go in as they are: mhw wrote them with
    :func:`~mh_webhook_cli.core.json_text.dumps`, so they are already what it prints.
    orjson never refuses the rest (dumps' stdlib fallback could not write a Fragment):
    SQLite's text comes out as valid UTF-8, so no string holds a lone surrogate, and
    every number is SQLite's 64-bit integer.

    The row is unpacked once, not read field by field: an export calls this a million
    times, and each named field costs an attribute lookup.
    """
    (
        row_id,
        received_at,
        method,
        path,
        _,
        body,
        client,
        event_type,
        project_id,
        verification,
        findings,
        response_status,
        retry_of,
        forwards,
        valid,
    ) = row
    return {
        "id": row_id,
        "received_at": utc_iso_ms(received_at),
        "method": method,
        "path": path,
        "client": client,
        "event_type": event_type,
        "project_id": project_id,
        "verification": verification,
        "valid": bool(valid),
        "findings": Fragment(findings),
        "response_status": response_status,
        "forwards": Fragment(forwards),
        "retry_of": retry_of,
        "body_bytes": len(body),
    }


def detail_json(row: StoredRow) -> dict[str, Any]:
    """One request in full, for ``show --format json`` and each line of a JSON lines export."""
    detail = summary_json(row)
    detail["headers"] = Fragment(row.headers)
    detail["body"], detail["body_base64"] = _body_text(row.body)
    return detail


def _forward_status(forward: ForwardResult) -> str:
    return str(forward["status"]) if forward["status"] is not None else "error"


def _schema(request: Received) -> Segment:
    if not request.findings:
        return ("ok", "")
    count = len(request.findings)
    return (f"{count} finding{'' if count == 1 else 's'}", "red")


_LIST_HEADER: list[Segment] = [
    (title, "bold")
    for title in ("id", "received", "event", "project", "signature", "schema", "answer", "fwd")
]


def list_text(requests: Iterable[Received]) -> list[Line]:
    """One line per request, newest first: enough to pick the one to ``show``."""
    return [line for page in list_pages(requests) for line in page]


def list_pages(requests: Iterable[Received], page_rows: int = PAGE_ROWS) -> Iterator[list[Line]]:
    """:func:`list_text` a page at a time, under the header; nothing when there is nothing.

    Aligning a million rows at once meant holding them all: the first page sizes the
    columns instead, and a later page only widens a column that it overflows.
    """
    widths: list[int] = []
    rows: list[list[Segment]] = [_LIST_HEADER]
    for request in requests:
        rows.append(_list_row(request))
        if len(rows) >= page_rows:
            yield _aligned(rows, widths)
            rows = []
    if rows and rows != [_LIST_HEADER]:
        yield _aligned(rows, widths)


def _list_row(request: Received) -> list[Segment]:
    event = request.event_type or "-"
    if request.retry_of is not None:
        event += f" (retry of {request.retry_of})"
    return [
        (str(request.id), "cyan"),
        (local_time(request.received_at), ""),
        (event, ""),
        (request.project_id or "-", ""),
        (request.verification, _VERDICT_STYLES.get(request.verification, "red")),
        _schema(request),
        (str(request.answer), "" if request.answer < 400 else "red"),
        (",".join(_forward_status(forward) for forward in request.forwards) or "-", ""),
    ]


def _aligned(rows: list[list[Segment]], widths: list[int]) -> list[Line]:
    """:func:`columns` with each column at least ``widths`` wide; ``widths`` becomes theirs."""
    spacer: list[Segment] = [(" " * width, "") for width in widths]
    table = [spacer, *rows]
    widths[:] = [
        max(len(row[i][0]) for row in table if i < len(row)) for i in range(len(_LIST_HEADER))
    ]
    return columns(table)[1:]


def detail_text(request: Received) -> list[Line]:
    """Everything about one request: the verdicts, the headers, and the body made readable."""
    facts: list[list[Segment]] = [
        [
            ("received", "dim"),
            (f"{local_time(request.received_at)}  ({utc_iso_ms(request.received_at)})", ""),
        ],
        [("from", "dim"), (request.client, "")],
        [("request", "dim"), (f"{request.method} {request.target}", "")],
        [("event", "dim"), (request.event_type or "-", "")],
        [("project", "dim"), (request.project_id or "-", "")],
        [
            ("signature", "dim"),
            (request.verification, _VERDICT_STYLES.get(request.verification, "bold red")),
        ],
        [("schema", "dim"), _schema(request)],
        [("answered", "dim"), (str(request.answer), "")],
    ]
    if request.retry_of is not None:
        facts.append(
            [("retry of", "dim"), (f"request {request.retry_of} (same event, same bytes)", "")]
        )
    for forward in request.forwards:
        outcome = _forward_status(forward)
        if forward["latency_ms"] is not None:
            outcome += f" in {forward['latency_ms']:.0f} ms"
        if forward["error"]:
            outcome += f": {forward['error']}"
        facts.append([("forwarded", "dim"), (f"{forward['target']} → {outcome}", "")])
    lines: list[Line] = [[(f"Request {request.id}", "bold")], *columns(facts)]
    if request.findings:
        lines += ["", [("Findings:", "bold")]]
        lines += columns(
            [
                [(f["path"], "cyan"), (f["code"], "yellow"), (f["message"], "")]
                for f in request.findings
            ]
        )
    lines += ["", [("Headers:", "bold")]]
    lines += [[(f"{name}: ", "cyan"), (value, "")] for name, value in request.headers]
    lines += ["", [(f"Body ({len(request.body)} bytes):", "bold")], *_body_lines(request.body)]
    return lines


def _body_lines(body: bytes) -> list[Line]:
    if not body:
        return [[("(empty)", "dim")]]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return [[("(binary; see it exactly with --raw)", "dim")]]
    # Not JSON, or nested deeper than Python walks: shown as it came.
    with contextlib.suppress(ValueError, RecursionError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    lines: list[Line] = [*screen_lines(text)]
    return lines


def raw_request(request: Received) -> bytes:
    """The request as raw HTTP that ``mhw verify --request -`` reads back with the same body.

    A chunked request was stored de-chunked; it is written back as one chunk,
    so its headers stay exactly as received and the body still parses out.
    """
    chunked = any(
        name.lower() == "transfer-encoding" and "chunked" in value.lower()
        for name, value in request.headers
    )
    if not chunked:
        return format_request(request.request)
    head = format_request(dataclasses.replace(request.request, body=b""))
    size = f"{len(request.body):x}\r\n".encode()
    return head + size + request.body + b"\r\n0\r\n\r\n" if request.body else head + b"0\r\n\r\n"


def har_head() -> str:
    """A HAR 1.2 document up to its first entry: entries, commas between, then :data:`HAR_TAIL`.

    Written in pieces so that an export streams instead of holding the store in memory.
    """
    creator = json.dumps({"name": "mhw", "version": __version__})
    return '{"log": {"version": "1.2", "creator": ' + creator + ', "entries": ['


HAR_TAIL = "]}}\n"


@functools.lru_cache(maxsize=256)
def _query_string(path: str) -> list[dict[str, str]]:
    """The query of a request target, as HAR lists it: a store repeats a few targets."""
    return [
        {"name": name, "value": value}
        for name, value in parse_qsl(urlsplit(path).query, keep_blank_values=True)
    ]


def har_entry(row: StoredRow) -> dict[str, Any]:
    """One request as a HAR entry that browser devtools import.

    What every entry has alike is written once (the empty parts, the timings, the
    response of each status): an export builds a million of these.
    """
    (
        row_id,
        received_at,
        method,
        path,
        headers,
        body,
        _,
        _,
        _,
        verification,
        _,
        status,
        _,
        _,
        _,
    ) = row
    by_name, har_headers = _har_headers(headers)
    post_data: dict[str, Any] = {"mimeType": by_name.get("content-type", "")}
    post_data["text"], as_base64 = _body_text(body)
    if as_base64:
        post_data["comment"] = "base64: the body is not UTF-8"
    return {
        "startedDateTime": utc_iso_ms(received_at),
        "time": 0,
        "request": {
            "method": method,
            "url": f"http://{by_name.get('host', 'localhost')}{path}",
            "httpVersion": "HTTP/1.1",
            "cookies": _EMPTY_ARRAY,
            "headers": har_headers,
            "queryString": _query_string(path),
            "postData": post_data,
            "headersSize": -1,
            "bodySize": len(body),
            "comment": f"mhw request {row_id}: signature {verification}",
        },
        "response": _har_response(status),
        "cache": _EMPTY_OBJECT,
        "timings": _NO_TIMINGS,
    }


def _har_headers(stored: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The stored headers by lowercased name (the last of a name wins), and as HAR lists them.

    Parsed with orjson: reading the text by its punctuation instead (no parse when it
    holds no backslash) measured twice as slow, 3 µs against 1.5 µs a row.
    """
    pairs: list[list[str]] = orjson.loads(stored)  # pairs of strings, as mhw wrote them
    by_name = {name.lower(): value for name, value in pairs}
    return by_name, [{"name": name, "value": value} for name, value in pairs]


_EMPTY_ARRAY = Fragment(b"[]")
_EMPTY_OBJECT = Fragment(b"{}")
_NO_TIMINGS = Fragment(b'{"send":0,"wait":0,"receive":0}')


@functools.lru_cache(maxsize=64)
def _har_response(status: int) -> Fragment:
    """The response of a HAR entry, which only its status tells apart."""
    return Fragment(
        orjson.dumps(
            {
                "status": status,
                "statusText": "",
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": [],
                "content": {"size": 0, "mimeType": ""},
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": -1,
            }
        )
    )


def export(pages: Iterable[Sequence[StoredRow]], target: IO[bytes], *, har: bool) -> int:
    """Write the rows of ``pages`` to ``target`` as JSON lines, or as one HAR document;
    how many rows there were."""
    output = _Output(target, har=har)
    output.write_chunks(pages)
    return output.close()


def export_store(path: Path, target: IO[bytes], *, har: bool, **split: int) -> int:
    """:func:`export` of every request in the store at ``path``, oldest first, rendered by
    this process and, for a large store, a helper process on another core
    (:func:`~mh_webhook_cli.receive.export.split_export`, which ``split`` tunes)."""
    from mh_webhook_cli.receive.export import split_export

    output = _Output(target, har=har)
    target.flush()  # before a fork, or the helper would hold a copy of what is not written yet
    split_export(path, functools.partial(_chunks, har=har), output.write, **split)
    return output.close()


class _Output:
    """Chunks of documents written to ``target`` as JSON lines or a HAR document."""

    def __init__(self, target: IO[bytes], *, har: bool) -> None:
        self._target = target
        self._har = har
        self.count = 0
        if har:
            target.write(har_head().encode())

    def write(self, text: bytes, rows: int) -> None:
        """``rows`` documents, as :func:`_chunks` made them."""
        if self._har:
            if self.count:
                self._target.write(b",")
            self._target.write(text)
        else:
            self._target.write(text)
            self._target.write(b"\n")
        self.count += rows

    def write_chunks(self, pages: Iterable[Sequence[StoredRow]]) -> None:
        """The rows of ``pages``, rendered here."""
        for text, rows in _chunks(pages, har=self._har):
            self.write(text, rows)

    def close(self) -> int:
        """End the document; how many rows were written."""
        if self._har:
            self._target.write(HAR_TAIL.encode())
        return self.count


def _chunks(pages: Iterable[Sequence[StoredRow]], *, har: bool) -> Iterator[tuple[bytes, int]]:
    """The rows of ``pages`` as text :data:`_CHUNK_ROWS` at a time (:func:`_chunk_text`),
    and how many rows each holds."""
    document, separator = (har_entry, b",") if har else (detail_json, b"\n")
    for page in pages:
        for first in range(0, len(page), _CHUNK_ROWS):
            chunk = page[first : first + _CHUNK_ROWS]
            try:
                text = _chunk_text(chunk, document, separator)
            except (TypeError, ValueError, AttributeError) as failure:
                # A row another program wrote with other types (a text time, a text body).
                raise StoreError(f"a stored request is not as mhw writes it: {failure}") from None
            yield text, len(chunk)


_CHUNK_ROWS = 32
"""Rows an export turns into text at a time: about 40 KB of the usual webhooks. Whole pages
(a megabyte) made the allocator hand its memory back to the kernel after each one and
fault it in again: 3 s of system time in a million-row export."""


def _chunk_text(
    rows: Sequence[StoredRow], document: Callable[[StoredRow], Any], separator: bytes
) -> bytes:
    """The JSON of each of ``rows`` as :func:`_json` writes it, ``separator`` between them.

    The usual chunk is written by orjson alone, and checked once: when all of it is ASCII
    without DEL, each of its documents is what :func:`_json` (so
    :func:`~mh_webhook_cli.core.json_text.dumps`) returns for it. A chunk that is not goes
    document by document through :func:`_json`.
    """
    dumps_fast = orjson.dumps
    try:
        text = separator.join([dumps_fast(document(row)) for row in rows])
    except orjson.JSONEncodeError:
        pass
    else:
        if _as_dumps_writes(text):
            return text
    return separator.join([_json(document(row)) for row in rows])


def show_list(
    rows: Iterable[StoredRow],
    output_format: Format,
    *,
    limit: int | None = None,
    missing_store: Path | None = None,
) -> None:
    """``mhw events list``: one JSON array, or the table.

    ``rows`` may hold one row past ``limit``: it is not shown, it only tells people that
    there are more. For people, an empty listing says why on stderr (no store yet at
    ``missing_store``, or no match), and a cut one says how to see the rest.
    """
    iterator = iter(rows)
    page = itertools.islice(iterator, limit)
    if output_format is Format.JSON:
        # Streamed in pieces, and the same text as dumps() of the whole list.
        out = sys.stdout.buffer
        out.write(b"[")
        separator = b""
        for chunk in iter(lambda: list(itertools.islice(page, _CHUNK_ROWS)), []):
            out.write(separator)
            out.write(_chunk_text(chunk, summary_json, b","))
            separator = b","
        out.write(b"]\n")
        out.flush()
        return
    shown = 0
    for lines in list_pages(row.request() for row in page):
        shown += len(lines)
        show(lines)
    if missing_store is not None:
        info(f"nothing captured yet: no store at {missing_store} ('mhw listen' creates it)")
    elif shown == 0:
        info("no captured request matches")
    elif next(iterator, None) is not None:
        info(f"showing the newest {limit}: --limit N or --all for more")


def show_detail(row: StoredRow, output_format: Format, *, raw: bool = False) -> None:
    """``mhw events show``: the request as raw HTTP bytes, as JSON, or for people."""
    if raw:
        sys.stdout.buffer.write(raw_request(row.request()))
        sys.stdout.buffer.flush()
    elif output_format is Format.JSON:
        emit_json(detail_json(row))
    else:
        show(detail_text(row.request()))


def show_replay(result: SendResult, output_format: Format) -> None:
    """``mhw events replay``: what sending the request again did."""
    from mh_webhook_cli.report.send import send_json, send_text

    if output_format is Format.JSON:
        emit_json(send_json(result, None))
    else:
        show(send_text(result, None))


def _json(data: Any) -> bytes:
    """:func:`~mh_webhook_cli.core.json_text.dumps` as UTF-8, the usual case without a
    round trip through ``str``: orjson's ASCII output without DEL is what dumps returns
    unchanged; anything else goes through dumps itself."""
    try:
        text = orjson.dumps(data)
    except orjson.JSONEncodeError:
        return dumps(data).encode()
    if _as_dumps_writes(text):
        return text
    return dumps(data).encode()


def _as_dumps_writes(text: bytes) -> bool:
    """Whether orjson's ``text`` is what :func:`~mh_webhook_cli.core.json_text.dumps`
    returns: it changes only non-ASCII characters and DEL."""
    return text.isascii() and b"\x7f" not in text
