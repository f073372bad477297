"""How ``mhw listen`` shows a delivery: one line for people, one JSON object for machines."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from mh_webhook_cli.listener import UNCHECKED, UNSIGNED, Delivery
from mh_webhook_cli.output import Line, Segment, columns
from mh_webhook_cli.signing import Reason
from mh_webhook_cli.store import ForwardResult

SLOW_HANDLER_MS = 10_000


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _payload_status(delivery: Delivery) -> str | None:
    try:
        status = json.loads(delivery.request.body)["payload"]["status"]
    except (ValueError, KeyError, TypeError):
        return None
    return status if isinstance(status, str) else None


def verdict_segment(verification: str) -> Segment:
    if verification == Reason.OK.value:
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
        (_payload_status(delivery) or "-", ""),
        ("  ", ""),
        verdict_segment(delivery.verification),
        ("  → ", "dim"),
        (str(delivery.answer), "green" if delivery.answer < 300 else "red"),
    ]
    if delivery.is_retry:
        retry = f"retry of #{delivery.retry_of}" if delivery.retry_of else "retry"
        segments += [("  ", ""), (retry, "magenta")]
    if delivery.findings:
        segments += [("  ", ""), (f"⚠ {len(delivery.findings)} schema finding(s)", "yellow")]
    if delivery.id is not None:
        segments += [("  ", ""), (f"#{delivery.id}", "dim")]
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
        "id": delivery.id,
        "received_at": _iso(delivery.received_at),
        "method": request.method,
        "path": request.target,
        "client": request.client,
        "type": delivery.event_type,
        "project_id": delivery.project_id,
        "status": _payload_status(delivery),
        "verification": delivery.verification,
        "valid": delivery.valid,
        "findings": [
            {"path": f.path, "code": f.code, "message": f.message} for f in delivery.findings
        ],
        "retry": delivery.is_retry,
        "retry_of": delivery.retry_of,
        "answer": delivery.answer,
        "forwards": list(delivery.forwards),
        "headers": dict(request.headers),
        "body": body,
        "body_encoding": encoding,
    }


def summary_lines(counts: Counter[tuple[str, str]], refused: int) -> list[Line]:
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
        lines.append([(f"  {refused} refused at the HTTP level (see warnings above)", "yellow")])
    return lines
