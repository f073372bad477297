"""Check a request's signature and explain why it fails."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.options import FormatOption, SecretOption, read_input, webhook_secrets
from mh_webhook_cli.core.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from mh_webhook_cli.core.signing import (
    verify as verify_request,
)
from mh_webhook_cli.errors import ExitCode, UsageError
from mh_webhook_cli.report.console import Format, emit_json, show

if TYPE_CHECKING:
    from mh_webhook_cli.core.http_text import CapturedRequest


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
    store: Annotated[
        Path | None,
        typer.Option(help="Capture store for --event; by default $MHW_STORE or mhw's data dir."),
    ] = None,
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
    from mh_webhook_cli.report.verify import verify_json, verify_text

    if event is not None:
        if request is not None or body_file is not None:
            raise UsageError("give --event, --request or --body-file, not several")
        stored, received_at = _stored_request(event, store)
        captured = _with_overrides(stored, signature, timestamp)
    else:
        captured = _load_request(request, body_file, signature, timestamp)
        received_at = time.time()
    secrets = webhook_secrets(secret)
    now = received_at if at is None else parse_time(at)
    # The headers as a list, not a dict: a repeated signature header must be seen to be judged.
    result = verify_request(captured.body, captured.headers, secrets, tolerance=tolerance, now=now)
    if output_format is Format.JSON:
        emit_json(verify_json(result, captured.body, secrets, captured.notes))
    else:
        show(verify_text(result, captured.body, secrets, captured.notes))
    if not result.valid:
        raise typer.Exit(ExitCode.FAILED)


def _load_request(
    request: str | None, body_file: str | None, signature: str | None, timestamp: str | None
) -> CapturedRequest:
    """The request to verify, from a capture or from a body and two header values.

    Header values given as options override those in a capture, so one can ask
    "would this capture verify with that signature?".
    """
    from mh_webhook_cli.core.http_text import CapturedRequest, CaptureError, parse_request

    if request is not None and body_file is not None:
        raise UsageError("give --request or --body-file, not both")
    if body_file is not None:
        if signature is None or timestamp is None:
            raise UsageError("--body-file needs --signature and --timestamp")
        captured = CapturedRequest("POST", "/", [], read_input(body_file, what="body"))
    else:
        raw = read_input(request, what="request")
        try:
            captured = parse_request(raw)
        except CaptureError as failure:
            raise UsageError(
                f"{failure}; to check a bare body use --body-file with --signature and --timestamp"
            ) from None
    return _with_overrides(captured, signature, timestamp)


def _with_overrides(
    captured: CapturedRequest, signature: str | None, timestamp: str | None
) -> CapturedRequest:
    """The request with the signature headers given as options in place of its own."""
    from mh_webhook_cli.core.http_text import CapturedRequest

    overrides = [(SIGNATURE_HEADER, signature), (TIMESTAMP_HEADER, timestamp)]
    headers = [
        (name, value)
        for name, value in captured.headers
        if not any(name.lower() == key for key, given in overrides if given is not None)
    ]
    headers += [(key, given) for key, given in overrides if given is not None]
    return CapturedRequest(captured.method, captured.target, headers, captured.body, captured.notes)


def _stored_request(event_id: int, store_path: Path | None) -> tuple[CapturedRequest, float]:
    from mh_webhook_cli.core.http_text import CapturedRequest
    from mh_webhook_cli.receive.store import stored_request

    stored = stored_request(event_id, store_path)
    captured = CapturedRequest(stored.method, stored.path, stored.headers, stored.body)
    return captured, stored.received_at


def parse_time(text: str) -> float:
    """Unix seconds or an ISO 8601 time (``Z`` allowed; no zone means UTC)."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):  # nan would make every age check pass
            raise UsageError(f"--at {text!r} is not a time")
        return seconds
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--at {text!r} is neither Unix seconds nor an ISO 8601 time "
            "(like 2026-11-23T14:05:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
