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
from mh_webhook_cli.report.console import (
    Form,
    Format,
    Line,
    Segment,
    bounded,
    emit_json_lines,
    fit,
    show,
    show_stderr,
    terminal_width,
)
from mh_webhook_cli.report.writer import PerTurn, dropped_notice


class EmulateReporter:
    """Shows the emulator's activity as it happens, for people: one line each on stdout,
    fitted to the terminal's width, written once per loop turn.

    The banner and the summary go to stderr in either format.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._turn: PerTurn[Activity] = PerTurn(self._write)

    def activity(self, activity: Activity) -> None:
        self._turn.add(activity)

    def _write(self, activities: list[Activity]) -> None:
        width = terminal_width("stdout")
        show_url = len(self.config.webhook_urls) > 1
        show([activity_line(activity, show_url=show_url, width=width) for activity in activities])

    def ready(self, url: str) -> None:
        show_stderr(banner_lines(url, self.config))

    def finish(self, stats: EmulatorStats) -> None:
        """The last of stdout, before it is closed."""
        self._turn.flush()

    def summary(self, stats: EmulatorStats, dropped: int) -> None:
        """For people, on stderr, once stdout is done with (``dropped``: lines it lost)."""
        show_stderr(summary_lines(stats, dropped))


class JsonEmulateReporter(EmulateReporter):
    """``--format json``: one object per line on stdout, a ``status`` line once ready and a
    ``summary`` line last."""

    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__(config)
        self._json = PerTurn(emit_json_lines)

    def activity(self, activity: Activity) -> None:
        self._json.add(activity_json(activity))

    def ready(self, url: str) -> None:
        super().ready(url)
        self._json.add(
            {
                "kind": "status",
                "state": "ready",
                "url": url,
                "env": {API_BASE.env: url},
                "webhook_urls": list(self.config.webhook_urls),
            }
        )

    def finish(self, stats: EmulatorStats) -> None:
        self._json.add({"kind": "summary", **vars(stats)})
        self._json.flush()


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


GAP: Segment = ("  ", "")
NOTHING: tuple[Form, ...] = ((),)


def _time_forms(at: float) -> tuple[Form, ...]:
    """12:00:01.234, then 12:00:01, then 12:00, then nothing: a narrow terminal's choices."""
    clock = _clock(at)
    return (((clock, "dim"), GAP), ((clock[:8], "dim"), GAP), ((clock[:5], "dim"), GAP), ())


def activity_line(activity: Activity, *, show_url: bool = False, width: int | None = None) -> Line:
    """``12:00:01.234  POST /v1/ai-image-generator  → 200  0.4 ms`` and the like, in at most
    ``width`` columns (all of it when None)."""
    if isinstance(activity, ApiCall):
        return _api_line(activity, width)
    if isinstance(activity, JobChange):
        return _job_line(activity, width)
    return _delivery_line(activity, show_url, width)


_API_STEPS = ((0, 0), (3, 0), (0, 0), (1, 12), (0, 0))


def _api_line(call: ApiCall, width: int | None) -> Line:
    parts = [
        _time_forms(call.at),
        (((bounded(f"{call.method} {call.path}"), "bold"),),),
        ((("  → ", "dim"), _status(call.status)),),
        (((f"  {call.latency_ms:.1f} ms", "dim"),), ()),
    ]
    return fit(parts, _API_STEPS, width)


_JOB_STEPS = ((5, 0), (6, 0), (0, 0), (5, 0), (2, 11), (0, 0), (6, 0), (1, 0), (0, 0), (2, 0))
"""The skipped event's note, then the refund's, the time, the project id's middle..."""


def _job_line(change: JobChange, width: int | None) -> Line:
    status = change.status + (f" {change.error_code}" if change.error_code else "")
    skipped: tuple[Form, ...] = NOTHING
    if change.skipped_event is not None:
        skipped = (
            (
                (
                    f"  ({change.skipped_event} skipped: renders under "
                    f"{_seconds(FAST_RENDER_SECONDS)} are too fast for it)",
                    "dim",
                ),
            ),
            ((f"  ({change.skipped_event} skipped)", "dim"),),
            (),
        )
    parts = [
        _time_forms(change.at),
        ((("job  ", "dim"), (f"{change.kind:<5}", "")), (("job ", "dim"), (change.kind, ""))),
        ((GAP, (change.project_id, "")), ()),
        ((GAP, (status, "red" if change.error_code else "bold")),),
        ((("  → ", "dim"), (change.event_type, "cyan")),) if change.event_type else NOTHING,
        skipped,
        (((("  (credits refunded)", "dim"),), (("  (refunded)", "dim"),), ()))
        if change.error_code
        else NOTHING,
    ]
    return fit(parts, _JOB_STEPS, width)


_DELIVERY_STEPS = (
    (0, 0),  # 12:00:01 for 12:00:01.234
    (7, 0),  # ✓ for ✓ delivered, "✗ gave up" for "✗ gave up after 3 attempt(s)"
    (5, 24),  # the middle of an error
    (4, 0),  # the URL without its scheme
    (2, 11),  # the middle of the project id
    (4, 14),  # the middle of the URL
    (0, 0),  # 12:00
    (1, 0),  # the event type without its padding
    (6, 0),  # the latency
    (7, 0),
    (4, 0),
    (0, 0),
    (2, 0),
    (5, 12),
    (1, 5),
)
"""Never given up: the attempt's number and the answer's status."""


def _url_forms(url: str) -> tuple[Form, ...]:
    bare = url.split("://", 1)[-1]
    return ((GAP, (url, "")), (GAP, (bare, "")), ())


def _delivery_line(attempt: DeliveryAttempt, show_url: bool, width: int | None) -> Line:
    answer: Segment = (
        _status(attempt.status)
        if attempt.status is not None
        else (attempt.error or "no answer", "red")
    )
    if attempt.ok:
        outcome: tuple[Form, ...] = (
            (("  ✓ delivered", "green"),),
            (("  ✓", "green"),),
        )
    elif attempt.retry_in is not None:
        retry = _seconds(attempt.retry_in)
        outcome = ((("  retry in " + retry, "yellow"),), (("  ↻ " + retry, "yellow"),))
    else:
        outcome = (
            ((f"  ✗ gave up after {attempt.attempt} attempt(s)", "bold red"),),
            (("  ✗ gave up", "bold red"),),
            (("  ✗", "bold red"),),
        )
    parts = [
        _time_forms(attempt.at),
        (((f"{attempt.event_type:<16}", "bold cyan"),), ((attempt.event_type, "bold cyan"),)),
        ((GAP, (attempt.project_id, "")), ()),
        (((f"  #{attempt.attempt}", "magenta" if attempt.attempt > 1 else "dim"),),),
        _url_forms(attempt.url) if show_url else NOTHING,
        ((("  → ", "dim"), answer),),
        (((f"  {attempt.latency_ms:.1f} ms", "dim"),), ()),
        outcome,
    ]
    return fit(parts, _DELIVERY_STEPS, width)


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
            (f", {stats.retries} {'retry' if stats.retries == 1 else 'retries'}, ", ""),
            (f"{stats.given_up} given up", "red" if stats.given_up else ""),
            (f", {stats.unfinished} unfinished", "yellow" if stats.unfinished else ""),
        ],
    ]
    if dropped:
        lines.append([(dropped_notice(dropped), "yellow")])
    return lines
