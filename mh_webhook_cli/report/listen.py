"""How ``mhw listen`` shows what happens: lines for people, JSON lines for machines.

The session hands every :data:`~mh_webhook_cli.receive.activity.Activity` to one of the two
reporters here (:class:`ListenTextReporter`, :class:`ListenJsonReporter`), which the command
picks. Requests go to stdout, one line (or one JSON object) each; the banner, statuses,
warnings and the summary to stderr, so that stdout stays a clean stream of results.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mh_webhook_cli.core.request import UNCHECKED, UNSIGNED, VERIFIED, ForwardResult, Received
from mh_webhook_cli.core.times import utc_iso_ms
from mh_webhook_cli.receive.activity import (
    Activity,
    AgentLog,
    Draining,
    Expectation,
    Forwarded,
    ForwardsStopped,
    Listening,
    Problem,
    Refused,
    RequestReceived,
    Stopped,
    TunnelChanged,
    UnstoredAtClose,
)
from mh_webhook_cli.report.console import (
    Format,
    Line,
    Segment,
    columns,
    emit_json_lines,
    info,
    show,
    show_stderr,
    warn,
)
from mh_webhook_cli.report.escape import screen_lines
from mh_webhook_cli.report.writer import dropped_notice

if TYPE_CHECKING:
    from mh_webhook_cli.report.writer import SessionOutput

SLOW_HANDLER_MS = 10_000


def verdict_segment(verification: str) -> Segment:
    if verification == VERIFIED:
        return ("✓ signed", "green")
    if verification == UNSIGNED:
        return ("unsigned", "yellow")
    if verification == UNCHECKED:
        return ("signed, unchecked (no secret)", "yellow")
    return (f"✗ {verification}", "bold red")


def request_line(received: Received) -> Line:
    """``14:05:12 video.completed clx… complete ✓ signed → 200``, plus marks for retries."""
    request = received.request
    when = datetime.fromtimestamp(received.received_at).strftime("%H:%M:%S")
    what = received.event_type or f"{request.method} {request.target}"
    segments: list[Segment] = [
        (when, "dim"),
        ("  ", ""),
        (f"{what:<16}", "bold cyan" if received.event_type else "bold"),
        ("  ", ""),
        (received.project_id or "-", ""),
        ("  ", ""),
        (received.project_status or "-", ""),
        ("  ", ""),
        verdict_segment(received.verification),
        ("  → ", "dim"),
        (str(received.answer), "green" if received.answer < 300 else "red"),
    ]
    if received.retry_of is not None:
        segments += [("  ", ""), (f"retry of #{received.retry_of}", "magenta")]
    if received.findings:
        segments += [("  ", ""), (f"⚠ {len(received.findings)} schema finding(s)", "yellow")]
    if received.id is not None:
        segments += [("  ", ""), (f"#{received.id}", "dim")]
    return segments


_JSON_TOKEN = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d[\d.eE+-]*|true|false|null)')


PAYLOAD_LINES_SHOWN = 200
PAYLOAD_CHARACTERS_SHOWN = 2_000
"""What ``-v`` draws of one payload at most: rich takes seconds to draw a megabyte on a
terminal, on the loop that answers requests. ``mhw events show`` has all of it."""


def payload_lines(received: Received) -> list[Line]:
    """``-v``: the event pretty-printed and highlighted, then its download URLs as links."""
    document = received.document
    try:
        pretty = None if document is None else json.dumps(document, indent=2, ensure_ascii=False)
    except RecursionError:  # nested deeper than Python walks: shown as it came
        pretty = None
    if pretty is None:
        raw = received.request.body.decode("utf-8", "replace")
        return [[("    ", ""), (_shortened(raw), "dim")], *_more(received, [raw])]
    text_lines = screen_lines(pretty)
    shown_lines = text_lines[:PAYLOAD_LINES_SHOWN]
    lines: list[Line] = [_highlighted("    " + _shortened(line)) for line in shown_lines]
    lines += _more(received, text_lines)
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


def _more(received: Received, text_lines: list[str]) -> list[Line]:
    """A note when -v left something out, and where to see all of it."""
    left_out = []
    if len(text_lines) > PAYLOAD_LINES_SHOWN:
        left_out.append(f"{len(text_lines) - PAYLOAD_LINES_SHOWN:,} more line(s)")
    if any(len(line) > PAYLOAD_CHARACTERS_SHOWN for line in text_lines):
        left_out.append("long lines shortened")
    if not left_out:
        return []
    where = f" (all of it: mhw events show {received.id})" if received.id is not None else ""
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


def finding_lines(received: Received) -> list[Line]:
    return [
        [("    ⚠ ", "yellow"), (f"{finding['path']}: {finding['message']}", "yellow")]
        for finding in received.findings
    ]


def forward_lines(received: Received, verbose: bool) -> list[Line]:
    lines: list[Line] = []
    for result in received.forwards:
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


def request_json(received: Received) -> dict[str, Any]:
    """One request for machines: everything the line shows, plus headers and the exact body."""
    request = received.request
    try:
        body: str = request.body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        body = base64.b64encode(request.body).decode()
        encoding = "base64"
    return {
        "kind": "request",
        "id": received.id,
        "received_at": utc_iso_ms(received.received_at),
        "method": request.method,
        "path": request.target,
        "client": request.client,
        "type": received.event_type,
        "project_id": received.project_id,
        "status": received.project_status,
        "verification": received.verification,
        "valid": received.valid,
        "findings": received.findings,
        "retry_of": received.retry_of,
        "answer": received.answer,
        "forwards": list(received.forwards),
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


def banner_lines(listening: Listening) -> list[Line]:
    """Where the listener is and how it is set up; for people, on stderr."""
    any_path = " (any path)" if listening.any_path else ""
    lines: list[Line] = [
        [("mhw listening", "bold"), (" on ", ""), (listening.url, "bold cyan"), (any_path, "")]
    ]
    if listening.ui_url is not None:
        lines.append([("  inspect  ", ""), (listening.ui_url, "bold cyan")])
    if listening.public_url is not None:
        lines += [
            [("  public   ", ""), (listening.public_url, "bold cyan")],
            [
                ("  paste    ", ""),
                (listening.webhook_url or "", "bold green"),
                ("  ← Developer Hub URL", "dim"),
            ],
            [
                (
                    "           in magichour.ai/developer: Create Webhook, this URL, and the "
                    "events you handle (image.started may be skipped for fast jobs)",
                    "dim",
                )
            ],
        ]
    if listening.secrets:
        lines.append("  secret   " + ", ".join(listening.secrets))
    lines.append(f"  store    {listening.store or 'off (--no-store)'}")
    lines += [f"  forward  {pattern or '*'} → {url}" for pattern, url in listening.forwards]
    if listening.expected:
        lines.append(f"  expect   {', '.join(listening.expected)} x{listening.count}")
    lines.append([("  Ctrl-C to stop", "dim")])
    return lines


def _unsafe_setup_warning(listening: Listening) -> str | None:
    if listening.secrets:
        return None
    if listening.public_url is not None:
        return (
            "no webhook secret and a public URL: anyone can post to it. Pass --secret "
            "(from the Developer Hub) and --reject-invalid"
        )
    return (
        "no webhook secret: signatures are not checked "
        "(pass --secret or run 'mhw config set webhook_secret')"
    )


def tunnel_message(change: TunnelChanged) -> str:
    if change.state == "starting":
        return "starting ngrok…"
    if change.state == "reconnecting":
        return f"tunnel dropped ({change.detail}): ngrok is reconnecting…"
    if change.state == "connected":
        return "tunnel reconnected: the public URL works again"
    if change.state == "stopped":
        return f"the ngrok agent stopped ({change.detail}): listening locally only"
    return f"tunnel {change.state}"


def expectation_message(expectation: Expectation) -> str:
    arrivals = ", ".join(
        f"{pattern} x{arrived} of {expectation.count}" for pattern, arrived in expectation.arrived
    )
    if expectation.met:
        return f"all expected events arrived: {arrivals}"
    patterns = ", ".join(pattern for pattern, _ in expectation.arrived)
    return f"timed out waiting for {patterns}: {arrivals}"


REFUSALS_SHOWN_PER_SECOND = 10


class ListenTextReporter:
    """Shows a listener's activity for people: a line per request on stdout, the rest on
    stderr. Also the base of :class:`ListenJsonReporter`, which differs in what it writes to
    stdout only.

    Implements :class:`mh_webhook_cli.receive.activity.Reporter`.
    """

    def __init__(
        self,
        verbose: bool = False,
        *,
        requests: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verbose = verbose
        self.requests = requests
        """False when another command (``mhw trigger``) reports requests its own way."""
        self._clock = clock
        """For the refusals' rate limit: injectable, so that a test needs no wall clock."""
        self._output: SessionOutput | None = None
        self._refusals_since = float("-inf")
        self._refusals_shown = 0
        self._refusals_hidden = 0

    def open(self, reader_gone: Callable[[], None]) -> None:
        from mh_webhook_cli.report.writer import SessionOutput

        self._output = SessionOutput(reader_gone)

    def close(self) -> bool:
        self.flush()
        output, self._output = self._output, None
        if output is None:
            return False
        output.close()
        return output.stdout.reader_gone

    def flush(self) -> None:
        """Write what is queued for stdout (nothing, for people: lines go out at once)."""

    def report(self, activity: Activity) -> None:
        if isinstance(activity, RequestReceived):
            if self.requests:
                self.request(activity)
        elif isinstance(activity, Forwarded):
            self.forwarded(activity.received)
        elif isinstance(activity, Refused):
            self._refused(activity)
        elif isinstance(activity, Listening):
            show_stderr(banner_lines(activity))
            self.status("listening", activity)
            unsafe = _unsafe_setup_warning(activity)
            if unsafe is not None:
                warn(unsafe)
        elif isinstance(activity, TunnelChanged):
            message = tunnel_message(activity)
            self.status(message, activity)
            info(message)
        elif isinstance(activity, AgentLog):
            if activity.serious or self.verbose:
                info([("ngrok: ", "dim"), (activity.line, "dim")])
        elif isinstance(activity, Problem):
            warn(activity.message)
        elif isinstance(activity, Expectation):
            info(expectation_message(activity))
        elif isinstance(activity, Draining):
            info(
                f"waiting up to {activity.seconds:g} s for {activity.forwards} forward(s); "
                "Ctrl-C again to quit now"
            )
        elif isinstance(activity, ForwardsStopped):
            warn(
                f"stopped {activity.forwards} forward(s) still under way: their results are "
                "not stored"
            )
        elif isinstance(activity, UnstoredAtClose):
            warn(
                f"answered 503 to {activity.requests} request(s) not stored before the store "
                "closed (another process held its lock); their senders deliver them again"
            )
        elif isinstance(activity, Stopped):
            self.flush()
            dropped = self._output.close_stdout() if self._output is not None else 0
            show_stderr(summary_lines(activity.counts, activity.refused, dropped))

    def request(self, event: RequestReceived) -> None:
        received = event.received
        lines = [request_line(received), *finding_lines(received)]
        if self.verbose:
            lines += payload_lines(received)
        show(lines)

    def forwarded(self, received: Received) -> None:
        show(forward_lines(received, self.verbose))

    def status(self, message: str, activity: Listening | TunnelChanged) -> None:
        """Something about the listener itself, for machines (people read it on stderr)."""

    def _refused(self, refused: Refused) -> None:
        """A warning per refusal, up to :data:`REFUSALS_SHOWN_PER_SECOND`; past that, a count.

        Refusing costs the sender nothing, so a flood of garbage would otherwise have the
        listener draw a line per request, and bury everything else on the screen.
        """
        now = self._clock()
        if now - self._refusals_since >= 1.0:
            if self._refusals_hidden:
                warn(f"refused {self._refusals_hidden} more request(s) in the last second")
            self._refusals_since, self._refusals_shown, self._refusals_hidden = now, 0, 0
        if self._refusals_shown < REFUSALS_SHOWN_PER_SECOND:
            self._refusals_shown += 1
            warn(f"refused a request from {refused.client}: {refused.status} {refused.reason}")
        else:
            self._refusals_hidden += 1


class ListenJsonReporter(ListenTextReporter):
    """Shows a listener's activity for machines: one JSON object per line on stdout (``kind``
    ``request`` or ``status``); stderr as for people."""

    def __init__(
        self, verbose: bool = False, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(verbose, clock=clock)
        self._json_lines: list[dict[str, Any]] = []

    def _emit(self, data: dict[str, Any]) -> None:
        """Queue a JSON line; lines of one loop turn are written and flushed together."""
        if not self._json_lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self._json_lines.append(data)

    def flush(self) -> None:
        """Write the queued JSON lines (also at shutdown, when the loop runs no more turns)."""
        lines, self._json_lines = self._json_lines, []
        if lines:
            emit_json_lines(lines)

    def request(self, event: RequestReceived) -> None:
        if not event.forwarding:  # else written once forwarded, with the forwards' results
            self._emit(request_json(event.received))

    def forwarded(self, received: Received) -> None:
        self._emit(request_json(received))

    def status(self, message: str, activity: Listening | TunnelChanged) -> None:
        if isinstance(activity, Listening):
            self._emit(
                {
                    "kind": "status",
                    "message": message,
                    "state": "listening",
                    "url": activity.url,
                    "public_url": activity.public_url,
                    "webhook_url": activity.webhook_url,
                    "ui_url": activity.ui_url,
                }
            )
            info(message)  # every status goes to stderr too
        else:
            self._emit({"kind": "status", "message": message, "state": activity.state})


def listen_reporter(output_format: Format, verbose: bool) -> ListenTextReporter:
    """The reporter for ``--format``."""
    if output_format is Format.JSON:
        return ListenJsonReporter(verbose)
    return ListenTextReporter(verbose)
