"""Check a request's signature and explain why it fails."""

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.options import (
    FormatOption,
    SecretOption,
    StoreToReadOption,
    read_input,
    webhook_secrets,
)
from mh_webhook_cli.core.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from mh_webhook_cli.core.verification import with_signature_headers
from mh_webhook_cli.errors import CaptureError, ExitCode, UsageError
from mh_webhook_cli.report.console import Format

if TYPE_CHECKING:
    from mh_webhook_cli.core.http_text import Capture


EXAMPLES = examples(
    "mhw verify --event 12",
    "mhw events show 12 --raw | mhw verify --request -",
    "mhw verify --body-file body.json --timestamp 1700000000 --signature HEX",
)


def verify(
    request: Annotated[
        str | None,
        typer.Option(
            "--request",
            "-r",
            metavar="FILE",
            help="A raw HTTP request as captured (request line, headers, blank line, body); "
            "- reads stdin, which is also the default.",
            show_default=False,
        ),
    ] = None,
    body_file: Annotated[
        str | None,
        typer.Option(
            "--body-file",
            "-b",
            metavar="FILE",
            help="The raw body alone (- for stdin); give --signature and --timestamp with it.",
            show_default=False,
        ),
    ] = None,
    signature: Annotated[
        str | None,
        typer.Option(
            "--signature", help=f"The {SIGNATURE_HEADER} value received.", show_default=False
        ),
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(
            "--timestamp", help=f"The {TIMESTAMP_HEADER} value received.", show_default=False
        ),
    ] = None,
    event: Annotated[
        int | None,
        typer.Option(
            "--event",
            "-e",
            metavar="ID",
            help="A request stored by 'mhw listen' (see 'mhw events list'), judged as of "
            "when it arrived unless --at says otherwise.",
            show_default=False,
        ),
    ] = None,
    store: StoreToReadOption = None,
    secret: SecretOption = None,
    tolerance: Annotated[
        int,
        typer.Option(
            help="Allowed distance of the timestamp from now, in seconds; 0 turns the check off.",
            min=0,
        ),
    ] = DEFAULT_TOLERANCE_SECONDS,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Judge the timestamp as of TIME (Unix seconds or ISO 8601, UTC if no zone), "
            "e.g. when an old capture was received.",
            show_default=False,
        ),
    ] = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Verify a request's signature; explain why it fails. Exit 0 valid, 1 invalid."""
    from mh_webhook_cli.core.times import parse_time
    from mh_webhook_cli.core.verification import verify as verify_request
    from mh_webhook_cli.report.verify import show_verification

    if event is not None:
        if request is not None or body_file is not None:
            raise UsageError("give --event, --request or --body-file, not several")
        captured, received_at = _stored_request(event, store)
    else:
        captured = _load_request(request, body_file, signature, timestamp)
        received_at = time.time()
    secrets = webhook_secrets(secret)
    now = received_at if at is None else parse_time(at, now=received_at, what="--at")
    # The headers as a list, not a dict: a repeated signature header must be seen to be judged.
    checked = captured.request
    headers = with_signature_headers(checked.headers, signature, timestamp)
    result = verify_request(checked.body, headers, secrets, tolerance=tolerance, now=now)
    show_verification(result, checked.body, secrets, captured.notes, output_format)
    if not result.valid:
        raise typer.Exit(ExitCode.FAILED)


def _load_request(
    request: str | None, body_file: str | None, signature: str | None, timestamp: str | None
) -> "Capture":
    """The request to verify: a capture, or a body alone (its two header values given)."""
    from mh_webhook_cli.core.http_text import Capture, parse_request
    from mh_webhook_cli.core.request import Request

    if request is not None and body_file is not None:
        raise UsageError("give --request or --body-file, not both")
    if body_file is not None:
        if signature is None or timestamp is None:
            raise UsageError("--body-file needs --signature and --timestamp")
        return Capture(Request.of("POST", "/", [], read_input(body_file, what="body")), [])
    raw = read_input(request, what="request")
    try:
        return parse_request(raw)
    except CaptureError as failure:  # the command's own advice added to the parser's words
        raise CaptureError(
            f"{failure}; to check a bare body use --body-file with --signature and --timestamp"
        ) from None


def _stored_request(event_id: int, store_path: Path | None) -> "tuple[Capture, float]":
    """A request ``mhw listen`` stored, and when it arrived; a usage error when there is none."""
    from mh_webhook_cli.core.http_text import Capture
    from mh_webhook_cli.receive.store import stored_request

    stored = stored_request(event_id, store_path)
    return Capture(stored.request, []), stored.received_at
