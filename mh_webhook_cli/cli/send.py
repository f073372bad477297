"""Send signed events to a webhook handler, as Magic Hour would, and report what it answered."""

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.completion import event_types
from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.options import (
    AssignmentsOption,
    FormatOption,
    HeaderOption,
    SigningSecretOption,
    extra_headers,
    http_url,
    read_input,
    signing_secret,
)
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.errors import ExitCode, UsageError
from mh_webhook_cli.report.console import Format

if TYPE_CHECKING:
    from mh_webhook_cli.send.delivery import Signer


DEFAULT_CONCURRENCY = 10


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


EXAMPLES = examples(
    "mhw send video.completed --url http://127.0.0.1:8000/webhook",
    "mhw send --all --url http://127.0.0.1:8000/webhook --retry",
    "mhw send image.completed -u http://127.0.0.1:8000/webhook --bad-signature",
)


def send(
    url: Annotated[str, typer.Option("--url", "-u", help="The handler's URL.", show_default=False)],
    event: Annotated[
        str | None,
        typer.Argument(
            help="Event type to send, e.g. video.completed.",
            show_default=False,
            autocompletion=event_types,
        ),
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
    secret: SigningSecretOption = None,
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
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help=f"With --count: requests in flight at once [default: {DEFAULT_CONCURRENCY}].",
            show_default=False,
        ),
    ] = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Send a signed event to a handler as Magic Hour would. Exit 0 accepted, 1 not, 2 usage.

    Accepted means a 2xx answer, or exactly --expect-status when given.
    """
    from mh_webhook_cli.core.signing import DEFAULT_TOLERANCE_SECONDS
    from mh_webhook_cli.report.send import send_reporter
    from mh_webhook_cli.send import delivery as sender
    from mh_webhook_cli.send.retry import Backoff
    from mh_webhook_cli.send.selection import EventSelection

    http_url(url, "--url")
    forged = no_sign or bad_signature or abs(timestamp_offset) > DEFAULT_TOLERANCE_SECONDS
    if expect_status is None and forged:
        expect_status = "4xx"  # a handler that accepts a forgery must not pass for one that works
    if concurrency is not None and count is None:
        raise UsageError("--concurrency sets how many of --count N go at once: add --count")
    if count is not None and (all_events or lifecycle is not None or retry):
        raise UsageError(
            "--count sends one event type; it does not combine with --all, --lifecycle or --retry"
        )
    selection = EventSelection(
        event=event,
        data=None if data is None else lambda: _read_data(data),
        all_events=all_events,
        lifecycle=None if lifecycle is None else lifecycle.value,
        fail=fail,
        project_id=project_id,
        error_code=error_code,
        assignments=tuple(assignments or ()),
    )
    events = selection.events()
    extra = extra_headers(headers)
    signer = _signer(secret, no_sign, bad_signature, timestamp_offset)
    tls = sender.tls_context(insecure, cacert)
    deliveries = [
        sender.Delivery(url, sender.serialize(body), name, tuple(extra)) for name, body in events
    ]
    reporter = send_reporter(output_format)

    if count is not None:
        from mh_webhook_cli.send.load import LoadTest, run_load_test

        in_flight = concurrency or DEFAULT_CONCURRENCY
        test = LoadTest(deliveries[0], signer, count, in_flight, timeout, tls, expect_status)
        with reporter.progress(count, deliveries[0].event or "event") as on_progress:
            summary = run_load_test(test, on_progress)
        reporter.load(summary)
        if summary.failed:
            raise typer.Exit(ExitCode.FAILED)
        return
    schedule = Backoff(limit=max_retry_time)
    accepted = True
    with sender.make_client(tls) as client:
        for delivery in deliveries:
            if retry:
                result = sender.send_with_retry(
                    client,
                    delivery,
                    signer,
                    timeout,
                    schedule=schedule,
                    expect_status=expect_status,
                    on_retry=reporter.retry,
                )
            else:
                result = sender.send_once(client, delivery, signer, timeout)
            accepted = accepted and result.ok(expect_status)
            reporter.result(result, expect_status, single=len(deliveries) == 1)
    if not accepted:
        raise typer.Exit(ExitCode.FAILED)


def _read_data(data: str) -> tuple[bytes, str]:
    """The bytes given with --data (``@file``, ``-`` for stdin, or the JSON itself) and
    where they came from."""
    if data == "-":
        return read_input("-", what="event"), "stdin"
    if data.startswith("@"):
        return read_input(data[1:], what="event"), data[1:]
    return data.encode("utf-8", "surrogateescape"), "--data"


def _signer(
    secret: str | None, no_sign: bool, bad_signature: bool, timestamp_offset: int
) -> "Signer":
    from mh_webhook_cli.send.delivery import Signer

    if no_sign:
        if secret or bad_signature or timestamp_offset:
            raise UsageError(
                "--no-sign sends no signature; drop --secret, --bad-signature, --timestamp-offset"
            )
        return Signer(None)
    return Signer(signing_secret(secret), timestamp_offset, bad_signature)
