"""How ``mhw send`` results look: text and JSON renderers side by side, as in :mod:`render`.

Kept apart from :mod:`mh_webhook_cli.report.verify` so that ``mhw verify`` does not load them.
"""

from __future__ import annotations

from typing import Any

from mh_webhook_cli.report.console import Line, Segment, columns
from mh_webhook_cli.report.escape import screen_lines
from mh_webhook_cli.send.delivery import LoadSummary, SendResult

TEXT_BODY_LIMIT = 2048
"""A terminal shows the start of a response body; a handler's error page can be huge."""
JSON_BODY_LIMIT = 65536
"""Machines get more of the body, but an accidental download still must not flood a pipe."""


def _body(result: SendResult, limit: int) -> tuple[str, bool]:
    """The start of the answer's body as text, and whether there is more than that."""
    shown = result.response_body[:limit].decode("utf-8", errors="replace")
    return shown, result.response_size > limit or not result.response_complete


def _size(result: SendResult) -> str:
    if result.response_complete:
        return f"{result.response_size} bytes"
    return f"over {result.response_size} bytes (mhw stopped reading there)"


def _verdict(result: SendResult, expect_status: int | str | None) -> Segment:
    if result.ok(expect_status):
        return ("✓", "bold green")
    return ("✗", "bold red")


def _status(result: SendResult) -> Segment:
    if result.status is None:
        return ("no answer", "bold red")
    style = "green" if 200 <= result.status < 300 else "yellow" if result.status < 500 else "red"
    return (str(result.status), "bold " + style)


def send_json(result: SendResult, expect_status: int | str | None) -> dict[str, Any]:
    """One delivery as data: everything :func:`send_text` shows, body less truncated."""
    body, truncated = _body(result, JSON_BODY_LIMIT)
    return {
        "url": result.url,
        "event": result.event,
        "status": result.status,
        "ok": result.ok(expect_status),
        "expected_status": expect_status,
        "error": result.error,
        "latency_ms": round(result.latency_ms, 3),
        "attempts": result.attempts,
        "response_headers": _joined(result.response_headers),
        "body": body,
        "body_bytes": result.response_size,
        "body_truncated": truncated,
        "signature": result.signature,
        "timestamp": result.timestamp,
    }


def _joined(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Headers as one JSON object: a repeated header's values joined with ", ", as HTTP
    combines them, so that none is lost."""
    joined: dict[str, str] = {}
    for name, value in headers:
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


def send_line(result: SendResult, expect_status: int | str | None) -> Line:
    """One delivery on one line, for runs that send several events."""
    line: list[Segment] = [
        _verdict(result, expect_status),
        (" ", ""),
        ((result.event or "(data)").ljust(16), "bold"),
        (" ", ""),
        _status(result),
        (f"  {result.latency_ms:.1f} ms", "dim"),
    ]
    if result.error:
        line.append(("  " + result.error, ""))
    if result.attempts > 1:
        line.append((f"  after {result.attempts} attempts", "dim"))
    return line


def send_text(result: SendResult, expect_status: int | str | None) -> list[Line]:
    """One delivery for people: the verdict, what was signed, and what the handler answered."""
    lines: list[Line] = [send_line(result, expect_status)]
    facts: list[list[Segment]] = [[("url", "dim"), (result.url, "")]]
    if result.signature is not None:
        facts.append([("signature", "dim"), (result.signature, "")])
        facts.append([("timestamp", "dim"), (str(result.timestamp), "")])
    else:
        facts.append([("signature", "dim"), ("(not signed)", "")])
    if expect_status is not None:
        facts.append([("expected", "dim"), (f"status {expect_status}", "")])
    lines += columns(facts)
    if result.status is None:
        return lines
    if result.response_headers:
        lines += ["", [("Response headers", "bold")]]
        lines += [f"  {name}: {value}" for name, value in result.response_headers]
    body, truncated = _body(result, TEXT_BODY_LIMIT)
    lines += ["", [("Response body", "bold"), (f"  {_size(result)}", "dim")]]
    lines += [f"  {line}" for line in screen_lines(body)] or [[("  (empty)", "dim")]]
    if truncated:
        lines.append(
            [
                (
                    f"  … truncated to the first {TEXT_BODY_LIMIT} bytes (see --format json)",
                    "dim",
                )
            ]
        )
    return lines


def retry_line(result: SendResult, delay: float) -> str:
    """A failed attempt and the wait before the next, for stderr while retrying."""
    outcome = result.error or f"status {result.status}"
    return f"attempt {result.attempts}: {outcome}; retrying in {delay:g} s"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def load_json(summary: LoadSummary) -> dict[str, Any]:
    """A load test as data."""
    return {
        "url": summary.url,
        "event": summary.event,
        "count": summary.count,
        "concurrency": summary.concurrency,
        "ok": summary.ok,
        "failed": summary.failed,
        "duration_s": round(summary.duration_s, 3),
        "requests_per_second": round(summary.requests_per_second, 1),
        "latency_ms": {
            "p50": _ms(summary.percentile(0.50)),
            "p95": _ms(summary.percentile(0.95)),
            "p99": _ms(summary.percentile(0.99)),
            "mean": _ms(summary.mean_ms),
            "max": _ms(max(summary.latencies_ms, default=None)),
        },
        "statuses": {str(status): number for status, number in summary.statuses.items()},
        "errors": summary.errors,
    }


def load_text(summary: LoadSummary) -> list[Line]:
    """A load test for people: throughput, latency percentiles, what came back."""
    verdict: Segment = ("✓", "bold green") if summary.failed == 0 else ("✗", "bold red")
    lines: list[Line] = [
        [
            verdict,
            (f" {summary.ok} of {summary.count} accepted", "bold"),
            (f"  {summary.requests_per_second:,.0f} requests/s", "bold"),
            (f"  ({summary.duration_s:.2f} s, concurrency {summary.concurrency})", "dim"),
        ]
    ]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    latency = (
        f"p50 {ms(summary.percentile(0.5))}  p95 {ms(summary.percentile(0.95))}  "
        f"p99 {ms(summary.percentile(0.99))}  max {ms(max(summary.latencies_ms, default=None))}"
    )
    statuses = "  ".join(f"{status}: {number}" for status, number in summary.statuses.items())
    rows: list[list[Segment]] = [
        [("url", "dim"), (summary.url, "")],
        [("latency", "dim"), (latency, "")],
        [("statuses", "dim"), (statuses or "(none)", "")],
    ]
    rows += [
        [("error", "dim"), (f"{number} x {message}", "red")]
        for message, number in summary.errors.items()
    ]
    return lines + columns(rows)
