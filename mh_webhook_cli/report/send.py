"""How ``mhw send`` results look: a reporter per format, over text and JSON renderers.

The command hands each result to the reporter :func:`send_reporter` picks for ``--format``;
nothing outside this module decides between text and JSON for ``mhw send``. Kept apart from
:mod:`mh_webhook_cli.report.verify` so that ``mhw verify`` does not load it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from mh_webhook_cli.report.console import (
    Format,
    Line,
    Segment,
    columns,
    emit_json,
    error,
    info,
    is_terminal,
    show,
)
from mh_webhook_cli.report.escape import screen_lines
from mh_webhook_cli.send.delivery import SendResult
from mh_webhook_cli.send.load import LoadSummary


class SendReporter:
    """``mhw send`` for people: a delivery in full when it is the only one, else one line each.

    Retries and the load test's progress go to stderr, in either format.
    """

    def result(self, result: SendResult, expect_status: int | str | None, *, single: bool) -> None:
        """One delivery's result. When a single delivery got no answer at all, the whole
        story is one line (refused, DNS, TLS, timeout), so it goes to stderr as an error,
        like every other failure of mhw."""
        if not single:
            show([send_line(result, expect_status)])
        elif result.error is None:
            show(send_text(result, expect_status))
        self._no_answer(result, single)

    def _no_answer(self, result: SendResult, single: bool) -> None:
        if single and result.error is not None:
            error(f"{result.url}: {result.error}")

    def retry(self, result: SendResult, wait: float) -> None:
        info(retry_line(result, wait))

    @contextlib.contextmanager
    def progress(self, total: int, what: str) -> Iterator[Callable[[], None] | None]:
        """A callback that advances a progress bar on a terminal's stderr; None elsewhere."""
        if not is_terminal(sys.stderr):
            yield None
            return
        from rich.progress import Progress

        from mh_webhook_cli.report.console import stderr

        with Progress(console=stderr(), transient=True) as bar:
            task = bar.add_task(f"sending {what}", total=total)
            yield lambda: bar.advance(task)

    def load(self, summary: LoadSummary) -> None:
        show(load_text(summary))


class JsonSendReporter(SendReporter):
    """``--format json``: one object per delivery, or the load test's summary, on stdout."""

    def result(self, result: SendResult, expect_status: int | str | None, *, single: bool) -> None:
        emit_json(send_json(result, expect_status))
        self._no_answer(result, single)

    def load(self, summary: LoadSummary) -> None:
        emit_json(load_json(summary))


def send_reporter(output_format: Format) -> SendReporter:
    return JsonSendReporter() if output_format is Format.JSON else SendReporter()


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
