"""How ``mhw emulate`` shows what happens: one line per API call, job change and delivery.

Lines for people on stdout, or with ``--format json`` one JSON object per line (``kind`` is
``api``, ``job`` or ``delivery``, plus a ``status`` line once ready and a ``summary`` at the
end); the banner and the summary for people go to stderr.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mh_webhook_cli.core.settings import API_BASE, mask
from mh_webhook_cli.magichour.emulator import (
    FAST_RENDER_SECONDS,
    Activity,
    ApiCall,
    DeliveryAttempt,
    EmulatorConfig,
    EmulatorStats,
    JobChange,
)
from mh_webhook_cli.report.console import Format, Line, Segment, emit_json, show, show_stderr
from mh_webhook_cli.report.writer import dropped_notice


class EmulateReporter:
    """Shows the emulator's activity as it happens, for people: one line each on stdout.

    The banner and the summary go to stderr in either format.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config

    def activity(self, activity: Activity) -> None:
        show([activity_line(activity, show_url=len(self.config.webhook_urls) > 1)])

    def ready(self, url: str) -> None:
        show_stderr(banner_lines(url, self.config))

    def finish(self, stats: EmulatorStats) -> None:
        """The last of stdout, before it is closed: nothing more for people."""

    def summary(self, stats: EmulatorStats, dropped: int) -> None:
        """For people, on stderr, once stdout is done with (``dropped``: lines it lost)."""
        show_stderr(summary_lines(stats, dropped))


class JsonEmulateReporter(EmulateReporter):
    """``--format json``: one object per line on stdout, a ``status`` line once ready and a
    ``summary`` line last."""

    def activity(self, activity: Activity) -> None:
        emit_json(activity_json(activity))

    def ready(self, url: str) -> None:
        super().ready(url)
        emit_json(
            {
                "kind": "status",
                "state": "ready",
                "url": url,
                "env": {API_BASE.env: url},
                "webhook_urls": list(self.config.webhook_urls),
            }
        )

    def finish(self, stats: EmulatorStats) -> None:
        emit_json({"kind": "summary", **vars(stats)})


def emulate_reporter(output_format: Format, config: EmulatorConfig) -> EmulateReporter:
    if output_format is Format.JSON:
        return JsonEmulateReporter(config)
    return EmulateReporter(config)


def _clock(at: float) -> str:
    moment = datetime.fromtimestamp(at)
    return f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"


def _seconds(value: float) -> str:
    """``1 s``, ``0.05 s``: short, and exact for the schedule's powers of two."""
    return f"{round(value, 3):g} s"


def _duration(seconds: float) -> str:
    """``24 h``, ``30 min``, ``45 s``: the retry time in the unit it was likely given in."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{round(seconds / size, 2):g} {unit}"
    return _seconds(seconds)


def _status(status: int) -> Segment:
    return (str(status), "green" if status < 300 else "yellow" if status < 500 else "red")


def activity_line(activity: Activity, *, show_url: bool = False) -> Line:
    """``12:00:01.234  POST /v1/ai-image-generator  → 200  0.4 ms`` and the like."""
    when: Segment = (_clock(activity.at), "dim")
    if isinstance(activity, ApiCall):
        return [
            when,
            ("  ", ""),
            (f"{activity.method} {activity.path}", "bold"),
            ("  → ", "dim"),
            _status(activity.status),
            (f"  {activity.latency_ms:.1f} ms", "dim"),
        ]
    if isinstance(activity, JobChange):
        return _job_line(when, activity)
    return _delivery_line(when, activity, show_url)


def _job_line(when: Segment, change: JobChange) -> Line:
    status = change.status + (f" {change.error_code}" if change.error_code else "")
    segments: list[Segment] = [
        when,
        ("  job  ", "dim"),
        (f"{change.kind:<5}", ""),
        ("  ", ""),
        (change.project_id, ""),
        ("  ", ""),
        (status, "red" if change.error_code else "bold"),
    ]
    if change.event_type is not None:
        segments += [("  → ", "dim"), (change.event_type, "cyan")]
    if change.skipped_event is not None:
        segments.append(
            (
                f"  ({change.skipped_event} skipped: renders under "
                f"{_seconds(FAST_RENDER_SECONDS)} are too fast for it)",
                "dim",
            )
        )
    if change.error_code:
        segments.append(("  (credits refunded)", "dim"))
    return segments


def _delivery_line(when: Segment, attempt: DeliveryAttempt, show_url: bool) -> Line:
    segments: list[Segment] = [
        when,
        ("  ", ""),
        (f"{attempt.event_type:<16}", "bold cyan"),
        ("  ", ""),
        (attempt.project_id, ""),
        (f"  #{attempt.attempt}", "magenta" if attempt.attempt > 1 else "dim"),
    ]
    if show_url:
        segments += [("  ", ""), (attempt.url, "")]
    segments.append(("  → ", "dim"))
    if attempt.status is not None:
        segments.append(_status(attempt.status))
    else:
        segments.append((attempt.error or "no answer", "red"))
    segments.append((f"  {attempt.latency_ms:.1f} ms", "dim"))
    if attempt.ok:
        segments.append(("  ✓ delivered", "green"))
    elif attempt.retry_in is not None:
        segments.append((f"  retry in {_seconds(attempt.retry_in)}", "yellow"))
    else:
        segments.append((f"  ✗ gave up after {attempt.attempt} attempt(s)", "bold red"))
    return segments


def activity_json(activity: Activity) -> dict[str, Any]:
    """The same as data; ``at`` is Unix time in seconds (to the millisecond)."""
    at = round(activity.at, 3)
    if isinstance(activity, ApiCall):
        return {
            "kind": "api",
            "at": at,
            "method": activity.method,
            "path": activity.path,
            "status": activity.status,
            "latency_ms": round(activity.latency_ms, 3),
            "client": activity.client,
        }
    if isinstance(activity, JobChange):
        return {
            "kind": "job",
            "at": at,
            "project_id": activity.project_id,
            "resource": activity.kind,
            "status": activity.status,
            "credits_charged": activity.credits_charged,
            "error_code": activity.error_code,
            "event": activity.event_type,
            "skipped_event": activity.skipped_event,
        }
    return {
        "kind": "delivery",
        "at": at,
        "type": activity.event_type,
        "project_id": activity.project_id,
        "url": activity.url,
        "attempt": activity.attempt,
        "status": activity.status,
        "ok": activity.ok,
        "error": activity.error,
        "latency_ms": round(activity.latency_ms, 3),
        "timestamp": activity.timestamp,
        "retry_in": activity.retry_in,
        "gave_up": activity.gave_up,
    }


def banner_lines(url: str, config: EmulatorConfig) -> list[Line]:
    """Where the emulator is, how to point clients at it, and how it will behave."""
    lines: list[Line] = [
        [("mhw emulating the Magic Hour API", "bold"), (" on ", ""), (url, "bold cyan")],
        [("  clients  ", ""), (f"export {API_BASE.env}={url}", "bold green")],
        "  api key  "
        + (mask(config.api_key) if config.api_key else "any non-empty Bearer key accepted"),
    ]
    if config.webhook_urls:
        lines += [f"  webhook  {target}" for target in config.webhook_urls]
        lines.append(f"  secret   {mask(config.secret or '')}")
        speed = f", {config.speed:g}x faster" if config.speed != 1 else ""
        lines.append(
            f"  retries  after 1 s, 2 s, 4 s … for {_duration(config.max_retry_seconds)}{speed}; "
            f"timeout {_seconds(config.delivery_timeout)}"
        )
    else:
        lines.append(
            [("  webhook  none: pass --webhook-url and --secret to receive events", "yellow")]
        )
    failing = (
        f", {config.fail_rate:.0%} fail ({config.error_code_for('image')}, "
        f"{config.error_code_for('audio')}, {config.error_code_for('video')})"
        if config.fail_rate
        else ""
    )
    lines += [
        f"  jobs     queued {_seconds(config.queue_seconds)}, "
        f"rendering {_seconds(config.render_seconds)}{failing}",
        f"  credits  {config.credits:,} ({config.tier} tier)",
        [("  Ctrl-C to stop", "dim")],
    ]
    return lines


def summary_lines(stats: EmulatorStats, dropped: int = 0) -> list[Line]:
    lines: list[Line] = [
        [
            ("emulated ", ""),
            (str(stats.jobs), "bold"),
            (f" job(s): {stats.completed} complete, {stats.errored} errored", ""),
        ],
        [
            ("  deliveries  ", ""),
            (f"{stats.delivered} delivered", "green"),
            (f", {stats.retries} retries, ", ""),
            (f"{stats.given_up} given up", "red" if stats.given_up else ""),
            (f", {stats.unfinished} unfinished", "yellow" if stats.unfinished else ""),
        ],
    ]
    if dropped:
        lines.append([(dropped_notice(dropped), "yellow")])
    return lines
