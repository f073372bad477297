"""How ``mhw listen`` shows a delivery: one line for people, one JSON object for machines."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from datetime import datetime
from typing import Any

from mh_webhook_cli.core.times import utc_iso_ms
from mh_webhook_cli.receive.listener import UNCHECKED, UNSIGNED, VERIFIED, Delivery
from mh_webhook_cli.receive.store import ForwardResult
from mh_webhook_cli.report.console import Line, Segment, columns
from mh_webhook_cli.report.escape import screen_lines
from mh_webhook_cli.report.writer import dropped_notice

SLOW_HANDLER_MS = 10_000


def verdict_segment(verification: str) -> Segment:
    if verification == VERIFIED:
        return ("✓ signed", "green")
    if verification == UNSIGNED:
        return ("unsigned", "yellow")
    if verification == UNCHECKED:
        return ("signed, unchecked (no secret)", "yellow")
    return (f"✗ {verification}", "bold red")


def delivery_line(delivery: Delivery) -> Line:
    """``14:05:12 video.completed clx… complete ✓ signed → 200``, plus marks for retries."""
    request = delivery.request
    when = datetime.fromtimestamp(delivery.received_at).strftime("%H:%M:%S")
    what = delivery.event_type or f"{request.method} {request.target}"
    segments: list[Segment] = [
        (when, "dim"),
        ("  ", ""),
        (f"{what:<16}", "bold cyan" if delivery.event_type else "bold"),
        ("  ", ""),
        (delivery.project_id or "-", ""),
        ("  ", ""),
        (delivery.project_status or "-", ""),
        ("  ", ""),
        verdict_segment(delivery.verification),
        ("  → ", "dim"),
        (str(delivery.answer), "green" if delivery.answer < 300 else "red"),
    ]
    if delivery.retry_of is not None:
        segments += [("  ", ""), (f"retry of #{delivery.retry_of}", "magenta")]
    if delivery.findings:
        segments += [("  ", ""), (f"⚠ {len(delivery.findings)} schema finding(s)", "yellow")]
    if delivery.id is not None:
        segments += [("  ", ""), (f"#{delivery.id}", "dim")]
    return segments


_JSON_TOKEN = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d[\d.eE+-]*|true|false|null)')


PAYLOAD_LINES_SHOWN = 200
PAYLOAD_CHARACTERS_SHOWN = 2_000
"""What ``-v`` draws of one payload at most: rich takes seconds to draw a megabyte on a
terminal, on the loop that answers requests. ``mhw events show`` has all of it."""


def payload_lines(delivery: Delivery) -> list[Line]:
    """``-v``: the event pretty-printed and highlighted, then its download URLs as links."""
    document = delivery.document
    try:
        pretty = None if document is None else json.dumps(document, indent=2, ensure_ascii=False)
    except RecursionError:  # nested deeper than Python walks: shown as it came
        pretty = None
    if pretty is None:
        raw = delivery.request.body.decode("utf-8", "replace")
        return [[("    ", ""), (_shortened(raw), "dim")], *_more(delivery, [raw])]
    text_lines = screen_lines(pretty)
    shown_lines = text_lines[:PAYLOAD_LINES_SHOWN]
    lines: list[Line] = [_highlighted("    " + _shortened(line)) for line in shown_lines]
    lines += _more(delivery, text_lines)
    payload = document.get("payload") if isinstance(document, dict) else None
    downloads = payload.get("downloads") if isinstance(payload, dict) else None
    for download in downloads if isinstance(downloads, list) else []:
        url = download.get("url") if isinstance(download, dict) else None
        if isinstance(url, str):
            lines.append([("    ⬇ ", "dim"), (_shortened(url), _link_style(url))])
    return lines


def _shortened(text: str) -> str:
    if len(text) <= PAYLOAD_CHARACTERS_SHOWN:
        return text
    return f"{text[:PAYLOAD_CHARACTERS_SHOWN]}… ({len(text) - PAYLOAD_CHARACTERS_SHOWN:,} more)"


def _more(delivery: Delivery, text_lines: list[str]) -> list[Line]:
    """A note when -v left something out, and where to see all of it."""
    left_out = []
    if len(text_lines) > PAYLOAD_LINES_SHOWN:
        left_out.append(f"{len(text_lines) - PAYLOAD_LINES_SHOWN:,} more line(s)")
    if any(len(line) > PAYLOAD_CHARACTERS_SHOWN for line in text_lines):
        left_out.append("long lines shortened")
    if not left_out:
        return []
    where = f" (all of it: mhw events show {delivery.id})" if delivery.id is not None else ""
    return [[(f"    … {', '.join(left_out)}{where}", "dim")]]


def _link_style(url: str) -> str:
    """A clickable link for a plain http(s) URL; anything else is shown, never linked.

    The URL goes into a rich style string, which rich splits at whitespace and parses as
    styles (a sender's ``"x red"`` would restyle, ``"x nonsense"`` would raise), and from
    there into a terminal escape sequence (OSC 8), which a control character would end.
    """
    plain = len(url) <= PAYLOAD_CHARACTERS_SHOWN and url.isascii() and url.isprintable()
    plain = plain and " " not in url
    return f"underline link {url}" if plain and url.startswith(("https://", "http://")) else ""


def _highlighted(line: str) -> Line:
    segments: list[Segment] = []
    position = 0
    for token in _JSON_TOKEN.finditer(line):
        segments.append((line[position : token.start()], ""))
        if token.group(1) is not None:
            style = "cyan" if token.group(2) else "green"
            segments.append((token.group(1), style))
            segments.append((token.group(2) or "", ""))
        else:
            segments.append((token.group(3), "magenta"))
        position = token.end()
    segments.append((line[position:], ""))
    return segments


def finding_lines(delivery: Delivery) -> list[Line]:
    return [
        [("    ⚠ ", "yellow"), (f"{finding.path}: {finding.message}", "yellow")]
        for finding in delivery.findings
    ]


def forward_lines(delivery: Delivery, verbose: bool) -> list[Line]:
    lines: list[Line] = []
    for result in delivery.forwards:
        lines.append(_forward_line(result))
        failed = result["status"] is None or result["status"] >= 300
        if result["body"] and (failed or verbose):
            lines.append([("      ", ""), (result["body"][:500], "dim")])
    return lines


def _forward_line(result: ForwardResult) -> Line:
    prefix: Segment = ("    ↳ ", "dim")
    if result["status"] is None:
        return [prefix, (result["target"], ""), ("  ", ""), (result["error"] or "failed", "red")]
    latency = result["latency_ms"] or 0.0
    line: list[Segment] = [
        prefix,
        (result["target"], ""),
        ("  ", ""),
        (str(result["status"]), "green" if result["status"] < 300 else "red"),
        (f"  {latency:.0f} ms", "dim"),
    ]
    if latency > SLOW_HANDLER_MS:
        line.append(("  slower than Magic Hour's 10 s limit: it will retry", "yellow"))
    return line


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """One request for machines: everything the line shows, plus headers and the exact body."""
    request = delivery.request
    try:
        body: str = request.body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        body = base64.b64encode(request.body).decode()
        encoding = "base64"
    return {
        "kind": "request",
        "id": delivery.id,
        "received_at": utc_iso_ms(delivery.received_at),
        "method": request.method,
        "path": request.target,
        "client": request.client,
        "type": delivery.event_type,
        "project_id": delivery.project_id,
        "status": delivery.project_status,
        "verification": delivery.verification,
        "valid": delivery.valid,
        "findings": [
            {"path": f.path, "code": f.code, "message": f.message} for f in delivery.findings
        ],
        "retry_of": delivery.retry_of,
        "answer": delivery.answer,
        "forwards": list(delivery.forwards),
        "headers": dict(request.headers),
        "body": body,
        "body_encoding": encoding,
    }


def summary_lines(counts: Counter[tuple[str, str]], refused: int, dropped: int = 0) -> list[Line]:
    total = sum(counts.values())
    lines: list[Line] = [[("received ", ""), (str(total), "bold"), (" request(s)", "")]]
    if counts:
        lines += columns(
            [
                [(f"  {event_type}", "cyan"), verdict_segment(verification), (f"{count}", "bold")]
                for (event_type, verification), count in sorted(counts.items())
            ]
        )
    if refused:
        lines.append([(f"  {refused} refused at the HTTP level (see the warnings)", "yellow")])
    if dropped:
        lines.append([(dropped_notice(dropped), "yellow")])
    return lines
