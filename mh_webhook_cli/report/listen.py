"""How ``mhw listen`` shows what happens: lines for people, JSON lines for machines.

The session hands every :data:`~mh_webhook_cli.receive.activity.Activity` to one of the two
reporters here (:class:`ListenTextReporter`, :class:`ListenJsonReporter`), which the command
picks. Requests go to stdout, one line (or one JSON object) each; the banner, statuses,
warnings and the summary to stderr, so that stdout stays a clean stream of results.

On a terminal each line fits its width of the moment: a line gives up its parts in a set
order (the project's status, the seconds, the verdict's words, the middle of the project id)
and never the request's ``#N``, the number ``mhw events show`` takes. Piped, it keeps them all.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
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
    Form,
    Format,
    Line,
    Segment,
    bounded,
    columns,
    emit_json_lines,
    fit,
    info,
    show,
    show_stderr,
    terminal_width,
    warn,
    within,
    wrapped,
)
from mh_webhook_cli.report.escape import shown
from mh_webhook_cli.report.writer import PerTurn, dropped_notice

if TYPE_CHECKING:
    from mh_webhook_cli.report.writer import SessionOutput

LATE_SECONDS = MAGIC_HOUR_TIMEOUT_SECONDS
"""Magic Hour waits this long for an answer, then gives up and delivers again later."""
GAP: Segment = ("  ", "")


def verdict_segment(verification: str, *, secret: bool = True) -> Segment:
    """How a verification reads. With a secret every request that is not correctly signed is
    invalid (401 under ``--reject-invalid``, listed by ``events list --invalid``): a cross,
    unsigned ones included. Without one nothing can be checked: a plain word."""
    if verification == VERIFIED:
        return ("✓ signed", "green")
    if verification == UNSIGNED:
        return ("✗ unsigned", "bold red") if secret else ("unsigned", "yellow")
    if verification == UNCHECKED:
        return ("signed, unchecked (no secret)", "yellow")
    return (f"✗ {verification}", "bold red")


_SHORT_VERDICTS = {
    UNCHECKED: "unchecked",
    "missing_signature": "✗ no signature",
    "missing_timestamp": "✗ no timestamp",
    "malformed_signature": "✗ bad signature",
    "malformed_timestamp": "✗ bad timestamp",
    "timestamp_too_old": "✗ too old",
    "timestamp_in_future": "✗ in the future",
    "signature_mismatch": "✗ mismatch",
    "ambiguous_headers": "✗ ambiguous",
}
"""A verification in fewer columns (``mhw events show N`` explains it in full)."""


@lru_cache(maxsize=64)
def _verdict_forms(verification: str, secret: bool) -> tuple[Form, ...]:
    """The verdict in full, shorter, then its mark alone (✓ or ✗), for the steps to take."""
    text, style = verdict_segment(verification, secret=secret)
    short = _SHORT_VERDICTS.get(verification, text)
    mark = short[0] if short.startswith(("✓", "✗")) else short
    return ((GAP, (text, style)), (GAP, (short, style)), (GAP, (mark, style)))


@lru_cache(maxsize=4)
def _time_forms(second: int) -> tuple[Form, ...]:
    """``14:05:12`` in local time, then ``14:05``, then nothing; made once a second, not once
    a request (as are the other parts that many requests share: a listener draws thousands
    of lines a second)."""
    clock = time.strftime("%H:%M:%S", time.localtime(second))
    return (((clock, "dim"), GAP), ((clock[:5], "dim"), GAP), ())


@lru_cache(maxsize=64)
def _answer_forms(answer: int, late: bool) -> tuple[Form, ...]:
    return ((("  → ", "dim"), (str(answer), "green" if answer < 300 and not late else "red")),)


# The parts of a request's line, and the order in which a narrow terminal gives them up.
TIME, WHAT, PROJECT, STATUS, VERDICT, ANSWER, DELAY, RETRY, FINDINGS, NUMBER = range(10)
_REQUEST_STEPS = (
    (STATUS, 0),  # the project's status: the event type says as much
    (DELAY, 0),  # "late (12 s)" for the sentence on Magic Hour's limit
    (FINDINGS, 0),  # "⚠ 2" for "⚠ 2 schema finding(s)"
    (VERDICT, 0),  # "✗ mismatch" for "✗ signature_mismatch"
    (RETRY, 0),  # "retry #1" for "retry of #1"
    (TIME, 0),  # 14:05 for 14:05:12
    (PROJECT, 11),  # the middle of the project id
    (RETRY, 0),  # "↻ #1"
    (WHAT, 0),  # the event type without its padding
    (VERDICT, 0),  # ✓ or ✗ alone
    (TIME, 0),
    (PROJECT, 0),
    (DELAY, 0),  # "late"
    (WHAT, 5),
    (RETRY, 0),
)
"""Never given up: the answer and the request's ``#N`` (``mhw events show N`` needs it)."""


def request_line(
    received: Received, width: int | None = None, *, secret: bool = True, delay: float = 0.0
) -> Line:
    """``14:05:12 video.completed clx… complete ✓ signed → 200 #12``, plus marks for
    retries, schema findings and a delayed answer; fitted to ``width`` columns."""
    event_type = received.event_type
    request = received.request
    # The caches are keyed on what is drawn, never on a stranger's whole string.
    what = bounded(event_type) if event_type else bounded(f"{request.method} {request.target}")
    parts: list[tuple[Form, ...]] = [
        _time_forms(int(received.received_at)),
        _what_forms(what, bool(event_type)),
        ((GAP, (bounded(received.project_id or "-"), "")), ()),
        _status_forms(bounded(received.project_status or "-")),
        _verdict_forms(received.verification, secret),
        _answer_forms(received.answer, delay > LATE_SECONDS),
        _delay_forms(delay) if delay else NOTHING,
        _retry_forms(received.retry_of) if received.retry_of is not None else NOTHING,
        _findings_forms(len(received.findings)) if received.findings else NOTHING,
        ((GAP, (f"#{received.id}", "dim")),) if received.id is not None else NOTHING,
    ]
    return fit(parts, _REQUEST_STEPS, width)


@lru_cache(maxsize=64)
def _what_forms(what: str, event: bool) -> tuple[Form, ...]:
    """The event type, padded to align the lines after it, then bare; for a request that is
    no event, its method and target."""
    style = "bold cyan" if event else "bold"
    return (((f"{what:<16}", style),), ((what, style),))


@lru_cache(maxsize=64)
def _status_forms(status: str) -> tuple[Form, ...]:
    return ((GAP, (status, "")), ())


NOTHING: tuple[Form, ...] = ((),)
"""A part a line does not have."""


@lru_cache(maxsize=8)
def _delay_forms(delay: float) -> tuple[Form, ...]:
    if delay > LATE_SECONDS:
        return (
            ((f"  late: after {delay:g} s, Magic Hour waits {LATE_SECONDS:g} s", "bold red"),),
            ((f"  late ({delay:g} s)", "bold red"),),
            (("  late", "bold red"),),
        )
    return (((f"  after {delay:g} s", "dim"),), ())


@lru_cache(maxsize=64)  # a sender retrying one delivery again and again draws it each time
def _retry_forms(original: int) -> tuple[Form, ...]:
    return (
        (GAP, (f"retry of #{original}", "magenta")),
        (GAP, (f"retry #{original}", "magenta")),
        (GAP, (f"↻ #{original}", "magenta")),
        (),
    )


@lru_cache(maxsize=64)
def _findings_forms(count: int) -> tuple[Form, ...]:
    return (
        (GAP, (f"⚠ {count} schema finding(s)", "yellow")),
        (GAP, (f"⚠ {count}", "yellow")),
    )


_JSON_TOKEN = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d[\d.eE+-]*|true|false|null)')
_BREAK = re.compile(r'"(?:[^"\\]|\\.)*"|, ')
"""Where a line of JSON may be folded: after a ``, `` outside a string."""

PAYLOAD_LINES_SHOWN = 4
"""What ``-v`` draws of a payload: a few lines, so that the request's line stays in view on
a terminal of 24 rows. ``mhw events show`` has all of it."""
DOWNLOADS_SHOWN = 3
FINDINGS_SHOWN = 5
MAX_URL_SHOWN = 2_000
UNKNOWN_WIDTH = 100
"""The width ``-v`` folds a payload to when it is not drawn on a terminal."""
INDENT = "    "


def payload_lines(received: Received, width: int | None = None) -> list[Line]:
    """``-v``: the event as compact JSON, highlighted and folded to a few lines (the rest left
    out, with where to see it), then its download URLs as links, a line each."""
    columns = max((width or UNKNOWN_WIDTH) - len(INDENT), 20)
    budget = columns * PAYLOAD_LINES_SHOWN
    document = received.document
    try:
        text = None if document is None else json.dumps(document, ensure_ascii=False)
    except RecursionError:  # nested deeper than Python walks: shown as it came
        text = None
    is_json = text is not None
    body = received.request.body
    if text is None:  # at most 4 bytes a character: enough for the budget, however long
        text = body[: budget * 4].decode("utf-8", "replace")
    # Twice what the lines hold: a line broken at its last ", " leaves room unused.
    folded, rest = _folded(shown(text[: budget * 2]), columns, PAYLOAD_LINES_SHOWN)
    if is_json:
        lines: list[Line] = [_highlighted(INDENT + line) for line in folded]
    else:
        lines = [[(INDENT + line, "dim")] for line in folded]
    if rest or len(text) > budget * 2 or (not is_json and len(body) > budget * 4):
        where = f"mhw events show {received.id}" if received.id is not None else "--format json"
        lines.append([(f"{INDENT}… the rest: {where}", "dim")])
    payload = document.get("payload") if isinstance(document, dict) else None
    downloads = payload.get("downloads") if isinstance(payload, dict) else None
    urls = [
        url
        for download in (downloads if isinstance(downloads, list) else [])
        if isinstance(download, dict) and isinstance(url := download.get("url"), str)
    ]
    for url in urls[:DOWNLOADS_SHOWN]:
        parts = (((f"{INDENT}⬇ ", "dim"),), ((url[:MAX_URL_SHOWN], _link_style(url)),))
        lines.append(fit([(part,) for part in parts], ((1, 20),), width))
    if len(urls) > DOWNLOADS_SHOWN:
        lines.append([(f"{INDENT}  … {len(urls) - DOWNLOADS_SHOWN} more download(s)", "dim")])
    return lines


def _folded(text: str, columns: int, rows: int) -> tuple[list[str], int]:
    """``text`` in at most ``rows`` lines of ``columns`` columns, broken after a ``, `` where
    one falls in the line, else where the line is full; and how many characters are left."""
    breaks = [match.end() for match in _BREAK.finditer(text) if match.group() == ", "]
    lines: list[str] = []
    start = 0
    while start < len(text) and len(lines) < rows:
        end = start + len(within(text[start : start + columns], columns))
        if end < len(text):
            last = bisect_right(breaks, end) - 1
            if last >= 0 and breaks[last] > start:
                end = breaks[last]
        lines.append(text[start:end])
        start = end
    return lines, len(text) - start


def _link_style(url: str) -> str:
    """A clickable link for a plain http(s) URL; anything else is shown, never linked.

    The URL goes into a rich style string, which rich splits at whitespace and parses as
    styles (a sender's ``"x red"`` would restyle, ``"x nonsense"`` would raise), and from
    there into a terminal escape sequence (OSC 8), which a control character would end.
    """
    plain = len(url) <= MAX_URL_SHOWN and url.isascii() and url.isprintable()
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


def finding_lines(received: Received, width: int | None = None) -> list[Line]:
    """A line per schema finding (a few at most: a sender controls how many there are)."""
    findings = received.findings
    lines = [
        fit(
            (((("    ⚠ ", "yellow"),),), (((f"{f['path']}: {f['message']}", "yellow"),),)),
            ((1, 10),),
            width,
        )
        for f in findings[:FINDINGS_SHOWN]
    ]
    if len(findings) > FINDINGS_SHOWN:
        where = f": mhw events show {received.id}" if received.id is not None else ""
        lines.append([(f"    … {len(findings) - FINDINGS_SHOWN} more finding(s){where}", "yellow")])
    return lines


FORWARD_BODY_SHOWN = 500
LEAD, TARGET, RESULT, LATENCY, SLOW = range(5)
_FORWARD_STEPS = (
    (SLOW, 0),  # "> 10 s: it retries"
    (TARGET, 0),  # the URL without its scheme
    (RESULT, 24),  # the middle of an error
    (TARGET, 24),  # the middle of the URL
    (SLOW, 0),  # "> 10 s"
    (LATENCY, 0),
    (TARGET, 10),
    (RESULT, 8),
)
"""Never given up: the request's ``#N``."""


def forward_lines(received: Received, verbose: bool, width: int | None = None) -> list[Line]:
    """``↳ #12 http://localhost:3000/webhook  200  17 ms`` per forward, the request's number
    first: the line may come after other requests' lines. The handler's answer follows when
    the forward failed, or with ``-v``."""
    lines: list[Line] = []
    for result in received.forwards:
        lines.append(_forward_line(result, received.id, width))
        failed = result["status"] is None or result["status"] >= 300
        if result["body"] and (failed or verbose):
            body = result["body"][:FORWARD_BODY_SHOWN]
            lines.append(fit(((((INDENT + "  ", ""),),), (((body, "dim"),),)), ((1, 10),), width))
    return lines


def _forward_line(result: ForwardResult, number: int | None, width: int | None) -> Line:
    lead: Form = (("    ↳ ", "dim"),)
    if number is not None:
        lead += ((f"#{number} ", "dim"),)
    status = result["status"]
    latency: tuple[Form, ...] = NOTHING
    if status is None:
        outcome: Form = (GAP, (result["error"] or "failed", "red"))
    else:
        outcome = (GAP, (str(status), "green" if status < 300 else "red"))
        latency = (((f"  {result['latency_ms'] or 0:.0f} ms", "dim"),), ())
    slow: tuple[Form, ...] = NOTHING
    if (result["latency_ms"] or 0) > LATE_SECONDS * 1000:
        slow = (
            ((f"  slower than Magic Hour's {LATE_SECONDS:g} s limit: it will retry", "yellow"),),
            ((f"  > {LATE_SECONDS:g} s: it retries", "yellow"),),
            ((f"  > {LATE_SECONDS:g} s", "yellow"),),
        )
    target = result["target"]
    bare = target.split("://", 1)[-1]
    parts = [(lead,), (((target, ""),), ((bare, ""),)), (outcome,), latency, slow]
    return fit(parts, _FORWARD_STEPS, width)


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
        "headers": [[name, value] for name, value in request.headers],  # repeats kept
        "body": body,
        "body_encoding": encoding,
    }


def summary_lines(
    counts: Counter[tuple[str, str]], refused: int, dropped: int = 0, *, secret: bool = True
) -> list[Line]:
    total = sum(counts.values())
    lines: list[Line] = [[("received ", ""), (str(total), "bold"), (" request(s)", "")]]
    if counts:
        lines += columns(
            [
                [
                    (f"  {event_type}", "cyan"),
                    verdict_segment(verification, secret=secret),
                    (f"{count}", "bold"),
                ]
                for (event_type, verification), count in sorted(counts.items())
            ]
        )
    if refused:
        lines.append([(f"  {refused} refused at the HTTP level (see the warnings)", "yellow")])
    if dropped:
        lines.append([(dropped_notice(dropped), "yellow")])
    return lines


def banner_lines(listening: Listening, width: int | None = None) -> list[Line]:
    """Where the listener is and how it is set up; for people, on stderr (its hint folded
    at spaces on a terminal narrower than it)."""
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
        ]
        lines += wrapped(
            [
                ("           ", ""),
                (
                    "in magichour.ai/developer: Create Webhook, this URL, and the events you "
                    "handle (image.started may be skipped for fast jobs)",
                    "dim",
                ),
            ],
            width,
        )
    if listening.secrets:
        lines.append("  secret   " + ", ".join(listening.secrets))
    lines.append(f"  store    {listening.store or 'off (--no-store)'}")
    if listening.events:
        lines.append(f"  show     {', '.join(listening.events)} (every event is stored)")
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

    Lines for stdout are drawn and written once per loop turn, as the JSON reporter writes
    its lines: under load one write (and one wake of the writer's thread) serves many
    requests. They are drawn at the terminal's width of that moment.

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
        self._secret = True
        """Whether the listener checks signatures (its banner says); until then, as if so."""
        self._turn = PerTurn(self._draw)
        """Lines for stdout, each drawn when the turn's lines are written."""
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
        """Write what this loop turn queued for stdout (also at shutdown)."""
        self._turn.flush()

    def _draw(self, drawings: list[Callable[[int | None], list[Line]]]) -> None:
        """A turn's lines for stdout, drawn at the terminal's width of this moment."""
        width = terminal_width("stdout")
        show([line for draw in drawings for line in draw(width)])

    def report(self, activity: Activity) -> None:
        if isinstance(activity, RequestReceived):
            if self.requests:
                self.request(activity)
        elif isinstance(activity, Forwarded):
            self.forwarded(activity.received)
        elif isinstance(activity, Refused):
            self._refused(activity)
        elif isinstance(activity, Listening):
            self._secret = bool(activity.secrets)
            show_stderr(banner_lines(activity, terminal_width("stderr")))
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
            summary = summary_lines(activity.counts, activity.refused, dropped, secret=self._secret)
            if activity.interrupted and sys.stderr.isatty():
                # The terminal echoed ^C where the cursor was: the summary starts below it.
                summary.insert(0, "")
            show_stderr(summary)

    def request(self, event: RequestReceived) -> None:
        self._turn.add(partial(self._request_lines, event))

    def _request_lines(self, event: RequestReceived, width: int | None) -> list[Line]:
        received = event.received
        lines = [request_line(received, width, secret=self._secret, delay=event.delay)]
        if received.findings:
            lines += finding_lines(received, width)
        if self.verbose:
            lines += payload_lines(received, width)
        # Under --mirror-status its forwards are done: right under it.
        if received.forwards and not event.forwarding:
            lines += forward_lines(received, self.verbose, width)
        return lines

    def forwarded(self, received: Received) -> None:
        self._turn.add(partial(forward_lines, received, self.verbose))

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
        self._json = PerTurn(emit_json_lines)

    def _emit(self, data: dict[str, Any]) -> None:
        """Queue a JSON line; lines of one loop turn are written and flushed together."""
        self._json.add(data)

    def flush(self) -> None:
        self._json.flush()

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
            )  # people read the banner on stderr: it says the same
        else:
            self._emit({"kind": "status", "message": message, "state": activity.state})


def listen_reporter(output_format: Format, verbose: bool) -> ListenTextReporter:
    """The reporter for ``--format``."""
    if output_format is Format.JSON:
        return ListenJsonReporter(verbose)
    return ListenTextReporter(verbose)
