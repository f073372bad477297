"""Send signed events to a webhook handler, as Magic Hour would, and report what it answered."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mh_webhook_cli.cli.options import (
    AssignmentsOption,
    FormatOption,
    HeaderOption,
    SecretOption,
    extra_headers,
    http_url,
    read_input,
    webhook_secrets,
)
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.errors import ExitCode, UsageError
from mh_webhook_cli.report.console import Format, emit_json, info, show

if TYPE_CHECKING:
    import ssl

    from mh_webhook_cli.send.delivery import Delivery, LoadSummary, SendResult, Signer


class Kind(str, Enum):
    VIDEO = "video"
    IMAGE = "image"
    AUDIO = "audio"


def _expected_status(text: str) -> str:
    """``--expect-status``: a status from 100 to 599, or a class from 1xx to 5xx."""
    value = text.strip().lower()
    if value in ("1xx", "2xx", "3xx", "4xx", "5xx") or (
        value.isdigit() and 100 <= int(value) < 600
    ):
        return value
    raise typer.BadParameter(f"{text!r} is not a status (401) or a class (4xx)")


def send(
    url: Annotated[str, typer.Option("--url", "-u", help="The handler's URL.", show_default=False)],
    event: Annotated[
        str | None,
        typer.Argument(help="Event type to send, e.g. video.completed.", show_default=False),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            metavar="JSON|@FILE|-",
            help="Send this event instead of a fixture: inline JSON, @file.json, or - for stdin.",
            show_default=False,
        ),
    ] = None,
    assignments: AssignmentsOption = None,
    project_id: Annotated[
        str | None, typer.Option("--id", help="The fixture's payload.id.", show_default=False)
    ] = None,
    error_code: Annotated[
        str | None,
        typer.Option("--error-code", help="Error code of an errored fixture.", show_default=False),
    ] = None,
    all_events: Annotated[
        bool, typer.Option("--all", help="Send each of the nine event types once.")
    ] = False,
    lifecycle: Annotated[
        Kind | None,
        typer.Option(
            help="Send started then completed for one project, as Magic Hour does.",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    fail: Annotated[
        bool, typer.Option("--fail", help="With --lifecycle, end in errored, not completed.")
    ] = False,
    secret: SecretOption = None,
    no_sign: Annotated[
        bool, typer.Option("--no-sign", help="Send without the signature headers.")
    ] = False,
    bad_signature: Annotated[
        bool,
        typer.Option("--bad-signature", help="Send a well-formed but wrong signature."),
    ] = False,
    timestamp_offset: Annotated[
        int,
        typer.Option(
            metavar="SECONDS",
            help="Sign with now + SECONDS; -600 sends a stale request a handler must reject.",
        ),
    ] = 0,
    headers: HeaderOption = None,
    timeout: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Seconds the whole exchange may take: connecting, sending, and the "
            "handler's complete answer (Magic Hour allows 10).",
        ),
    ] = MAGIC_HOUR_TIMEOUT_SECONDS,
    insecure: Annotated[
        bool, typer.Option("--insecure", "-k", help="Do not verify the TLS certificate.")
    ] = False,
    cacert: Annotated[
        str | None,
        typer.Option(metavar="PATH", help="Trust this CA bundle (PEM).", show_default=False),
    ] = None,
    expect_status: Annotated[
        str | None,
        typer.Option(
            metavar="CODE",
            parser=_expected_status,
            help="Succeed exactly when the handler answers CODE: a status (401) or a class "
            "(4xx). --bad-signature, --no-sign and a --timestamp-offset past 300 s expect 4xx.",
            show_default=False,
        ),
    ] = None,
    retry: Annotated[
        bool,
        typer.Option("--retry", help="Retry failures with backoff 1 s, 2 s, 4 s... as Magic Hour."),
    ] = False,
    max_retry_time: Annotated[
        float, typer.Option(min=0, metavar="SECONDS", help="Start no retry after this long.")
    ] = 60.0,
    count: Annotated[
        int | None,
        typer.Option(min=1, help="Load test: send the event N times.", show_default=False),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Requests in flight with --count.")
    ] = 10,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Send a signed event to a handler as Magic Hour would. Exit 0 accepted, 1 not, 2 usage.

    Accepted means a 2xx answer, or exactly --expect-status when given.
    """
    from mh_webhook_cli.core.signing import DEFAULT_TOLERANCE_SECONDS
    from mh_webhook_cli.send import delivery as sender

    http_url(url, "--url")
    forged = no_sign or bad_signature or abs(timestamp_offset) > DEFAULT_TOLERANCE_SECONDS
    if expect_status is None and forged:
        expect_status = "4xx"  # a handler that accepts a forgery must not pass for one that works
    if count is not None and (all_events or lifecycle is not None or retry):
        raise UsageError(
            "--count sends one event type; it does not combine with --all, --lifecycle or --retry"
        )
    events = _events(event, data, all_events, lifecycle, fail, project_id, error_code)
    events = [(name, _apply_sets(body, assignments or [])) for name, body in events]
    extra = extra_headers(headers)
    signer = _signer(secret, no_sign, bad_signature, timestamp_offset)
    try:
        tls = sender.tls_context(insecure, cacert)
    except ValueError as failure:
        raise UsageError(str(failure)) from None
    deliveries = [
        sender.Delivery(url, sender.serialize(body), name, tuple(extra)) for name, body in events
    ]

    if count is not None:
        _load_test(
            deliveries[0], signer, count, concurrency, timeout, tls, expect_status, output_format
        )
        return
    results: list[SendResult] = []
    with sender.make_client(tls) as client:
        for delivery in deliveries:
            if retry:
                result = sender.send_with_retry(
                    client,
                    delivery,
                    signer,
                    timeout,
                    max_retry_seconds=max_retry_time,
                    expect_status=expect_status,
                    on_retry=_report_retry,
                )
            else:
                result = sender.send_once(client, delivery, signer, timeout)
            results.append(result)
            _report(result, expect_status, output_format, single=len(deliveries) == 1)
    if not all(result.ok(expect_status) for result in results):
        raise typer.Exit(ExitCode.FAILED)


def _events(
    event: str | None,
    data: str | None,
    all_events: bool,
    lifecycle: Kind | None,
    fail: bool,
    project_id: str | None,
    error_code: str | None,
) -> list[tuple[str | None, Any]]:
    """The events to send, each with its type for the report, from exactly one source."""
    from datetime import datetime, timezone

    from mh_webhook_cli.core.catalog import EVENT_TYPES
    from mh_webhook_cli.core.fixtures import build_fixture

    sources = [event is not None, data is not None, all_events, lifecycle is not None]
    if sum(sources) != 1:
        raise UsageError("give exactly one of EVENT, --data, --all or --lifecycle")
    if fail and lifecycle is None:
        raise UsageError("--fail applies only to --lifecycle")
    if lifecycle is not None and error_code is not None and not fail:
        raise UsageError("--error-code shapes the errored event: add --fail to --lifecycle")
    if data is not None:
        if project_id is not None or error_code is not None:
            raise UsageError("--id and --error-code shape fixtures; with --data use --set")
        body = _read_data(data)
        name = body.get("type") if isinstance(body, dict) else None
        return [(name if isinstance(name, str) else None, body)]

    now = datetime.now(timezone.utc)
    if event is not None:
        names = [event]
    elif all_events:
        names = list(EVENT_TYPES)
    else:
        assert lifecycle is not None
        names = [
            f"{lifecycle.value}.started",
            f"{lifecycle.value}.{'errored' if fail else 'completed'}",
        ]
    if event is not None and event not in EVENT_TYPES:
        raise UsageError(f"unknown event {event!r}; choose one of {', '.join(EVENT_TYPES)}")
    events: list[tuple[str | None, Any]] = []
    for name in names:
        code = error_code if name.endswith(".errored") or not (all_events or lifecycle) else None
        try:
            fixture = build_fixture(name, now=now, project_id=project_id, error_code=code)
        except ValueError as failure:
            raise UsageError(str(failure)) from None
        if lifecycle is not None:
            # Every event of a lifecycle is about one project, so they share its id.
            project_id = fixture["payload"]["id"]
        events.append((name, fixture))
    return events


def _read_data(data: str) -> Any:
    """The event given with --data: ``@file``, ``-`` for stdin, or the JSON itself."""
    if data == "-":
        raw, where = read_input("-", what="event"), "stdin"
    elif data.startswith("@"):
        raw, where = read_input(data[1:], what="event"), data[1:]
    else:
        raw, where = data.encode("utf-8", "surrogateescape"), "--data"
    from mh_webhook_cli.core.catalog import parse_body

    # The listener's parser: its refusals (not UTF-8, too deep, NaN) are one-line findings.
    document, findings = parse_body(raw)
    if findings:
        raise UsageError(f"{where} is not JSON ({findings[0].message})")
    return document


def _apply_sets(body: Any, assignments: list[str]) -> Any:
    if not assignments:
        return body
    from mh_webhook_cli.core.fixtures import OverrideError, apply_overrides

    if not isinstance(body, dict):
        raise UsageError("--set needs the event to be a JSON object")
    try:
        return apply_overrides(body, assignments)
    except OverrideError as failure:
        raise UsageError(str(failure)) from None
    except RecursionError:  # its copy of the event recurses once per level of nesting
        raise UsageError("--set cannot change an event nested this deeply") from None


def _signer(
    secret: list[str] | None, no_sign: bool, bad_signature: bool, timestamp_offset: int
) -> Signer:
    from mh_webhook_cli.send.delivery import Signer

    if no_sign:
        if secret or bad_signature or timestamp_offset:
            raise UsageError(
                "--no-sign sends no signature; drop --secret, --bad-signature, --timestamp-offset"
            )
        return Signer(None)
    return Signer(webhook_secrets(secret)[0], timestamp_offset, bad_signature)


def _report_retry(result: SendResult, delay: float) -> None:
    from mh_webhook_cli.report.send import retry_line

    info(retry_line(result, delay))


def _report(
    result: SendResult, expect_status: str | None, output_format: Format, *, single: bool
) -> None:
    """Print one delivery's result.

    When a single delivery got no answer at all, the whole story is one line (refused, DNS,
    TLS, timeout), so it goes to stderr as an error, like every other failure of mhw.
    """
    from mh_webhook_cli.report.console import error
    from mh_webhook_cli.report.send import send_json, send_line, send_text

    if output_format is Format.JSON:
        emit_json(send_json(result, expect_status))
    elif not single:
        show([send_line(result, expect_status)])
    elif result.error is None:
        show(send_text(result, expect_status))
    if single and result.error is not None:
        error(f"{result.url}: {result.error}")


def _load_test(
    delivery: Delivery,
    signer: Signer,
    count: int,
    concurrency: int,
    timeout: float,
    tls: ssl.SSLContext,
    expect_status: str | None,
    output_format: Format,
) -> None:
    """Run the load test with a progress bar on a terminal, then print its summary."""
    from mh_webhook_cli.report.console import is_terminal, stderr
    from mh_webhook_cli.report.send import load_json, load_text
    from mh_webhook_cli.send.delivery import load_test

    def run(on_progress: Callable[[], None] | None = None) -> LoadSummary:
        return load_test(
            delivery,
            signer,
            count=count,
            concurrency=concurrency,
            timeout=timeout,
            tls=tls,
            expect_status=expect_status,
            on_progress=on_progress,
        )

    if is_terminal(sys.stderr):
        from rich.progress import Progress

        with Progress(console=stderr(), transient=True) as progress:
            task = progress.add_task(f"sending {delivery.event or 'event'}", total=count)
            summary = run(lambda: progress.advance(task))
    else:
        summary = run()
    if output_format is Format.JSON:
        emit_json(load_json(summary))
    else:
        show(load_text(summary))
    if summary.failed:
        raise typer.Exit(ExitCode.FAILED)
