"""How stored requests look: list lines, details, JSON, raw HTTP, JSON lines and HAR.

Kept apart from :mod:`mh_webhook_cli.report.verify` so that ``mhw events`` and the
verification views can change independently; the same split applies here,
each ``*_text`` has its ``*_json`` next to it so the two cannot drift apart.
"""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mh_webhook_cli import __version__
from mh_webhook_cli.core.http_text import CapturedRequest, format_request
from mh_webhook_cli.core.request import ForwardResult, Received
from mh_webhook_cli.core.times import utc_iso_ms
from mh_webhook_cli.report.console import Line, Segment, columns
from mh_webhook_cli.report.escape import screen_lines

_VERDICT_STYLES = {"ok": "green", "unsigned": "yellow", "unchecked": "dim"}


def local_time(timestamp: float) -> str:
    """The developer's own clock, which is what they compare with their handler's logs."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def body_json(body: bytes) -> dict[str, Any]:
    """The body as text when it is UTF-8, else as base64 with a flag saying so."""
    try:
        return {"body": body.decode("utf-8"), "body_base64": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "body_base64": True}


def summary_json(request: Received) -> dict[str, Any]:
    """One request for ``mhw events list --format json``: everything but headers and body."""
    return {
        "id": request.id,
        "received_at": utc_iso_ms(request.received_at),
        "method": request.method,
        "path": request.target,
        "client": request.client,
        "event_type": request.event_type,
        "project_id": request.project_id,
        "verification": request.verification,
        "valid": request.valid,
        "findings": request.findings,
        "response_status": request.answer,
        "forwards": request.forwards,
        "retry_of": request.retry_of,
        "body_bytes": len(request.body),
    }


def detail_json(request: Received) -> dict[str, Any]:
    """One request in full, for ``show --format json`` and each line of a JSON lines export."""
    return {
        **summary_json(request),
        "headers": [[name, value] for name, value in request.headers],
        **body_json(request.body),
    }


def _forward_status(forward: ForwardResult) -> str:
    return str(forward["status"]) if forward["status"] is not None else "error"


def _schema(request: Received) -> Segment:
    if not request.findings:
        return ("ok", "")
    count = len(request.findings)
    return (f"{count} finding{'' if count == 1 else 's'}", "red")


def list_text(requests: list[Received]) -> list[Line]:
    """One line per request, newest first: enough to pick the one to ``show``."""
    header: list[Segment] = [
        (title, "bold")
        for title in ("id", "received", "event", "project", "signature", "schema", "answer", "fwd")
    ]
    rows: list[list[Segment]] = [header]
    for request in requests:
        event = request.event_type or "-"
        if request.retry_of is not None:
            event += f" (retry of {request.retry_of})"
        rows.append(
            [
                (str(request.id), "cyan"),
                (local_time(request.received_at), ""),
                (event, ""),
                (request.project_id or "-", ""),
                (request.verification, _VERDICT_STYLES.get(request.verification, "red")),
                _schema(request),
                (str(request.answer), "" if request.answer < 400 else "red"),
                (",".join(_forward_status(forward) for forward in request.forwards) or "-", ""),
            ]
        )
    return columns(rows)


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
    captured = CapturedRequest(request.method, request.target, request.headers, request.body)
    chunked = any(
        name.lower() == "transfer-encoding" and "chunked" in value.lower()
        for name, value in request.headers
    )
    if not chunked:
        return format_request(captured)
    head = format_request(CapturedRequest(request.method, request.target, request.headers, b""))
    size = f"{len(request.body):x}\r\n".encode()
    return head + size + request.body + b"\r\n0\r\n\r\n" if request.body else head + b"0\r\n\r\n"


def har_head() -> str:
    """A HAR 1.2 document up to its first entry: entries, commas between, then :data:`HAR_TAIL`.

    Written in pieces so that an export streams instead of holding the store in memory.
    """
    creator = json.dumps({"name": "mhw", "version": __version__})
    return '{"log": {"version": "1.2", "creator": ' + creator + ', "entries": ['


HAR_TAIL = "]}}\n"


def har_entry(request: Received) -> dict[str, Any]:
    """One request as a HAR entry that browser devtools import."""
    headers = dict((name.lower(), value) for name, value in request.headers)
    host = headers.get("host", "localhost")
    target = urlsplit(request.target)
    post_data: dict[str, Any] = {"mimeType": headers.get("content-type", "")}
    body = body_json(request.body)
    post_data["text"] = body["body"]
    if body["body_base64"]:
        post_data["comment"] = "base64: the body is not UTF-8"
    return {
        "startedDateTime": utc_iso_ms(request.received_at),
        "time": 0,
        "request": {
            "method": request.method,
            "url": f"http://{host}{request.target}",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": name, "value": value} for name, value in request.headers],
            "queryString": [
                {"name": name, "value": value}
                for name, value in parse_qsl(target.query, keep_blank_values=True)
            ],
            "postData": post_data,
            "headersSize": -1,
            "bodySize": len(request.body),
            "comment": f"mhw request {request.id}: signature {request.verification}",
        },
        "response": {
            "status": request.answer,
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
