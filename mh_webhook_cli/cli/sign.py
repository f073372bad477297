"""Sign a body as Magic Hour would: print the two headers, or a ready curl command."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated

import typer

from mh_webhook_cli.cli.options import FormatOption, SecretOption, read_input, webhook_secrets
from mh_webhook_cli.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
from mh_webhook_cli.core.signing import sign as sign_body
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format
from mh_webhook_cli.report.sign import show_signature


def sign(
    file: Annotated[
        str | None,
        typer.Argument(help="File holding the body; - or omitted reads stdin.", show_default=False),
    ] = None,
    body_file: Annotated[
        str | None,
        typer.Option("--body-file", "-b", help="Same as FILE.", show_default=False),
    ] = None,
    secret: SecretOption = None,
    timestamp: Annotated[
        int | None,
        typer.Option(
            "--timestamp", "-t", help="Unix seconds to sign at; now by default.", show_default=False
        ),
    ] = None,
    curl: Annotated[
        str | None,
        typer.Option(
            "--curl",
            metavar="URL",
            help="Print a curl command that sends exactly these bytes, signed, to URL.",
            show_default=False,
        ),
    ] = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Sign a body: print the Magic Hour signature headers (or a curl command) for it."""
    if file is not None and body_file is not None:
        raise UsageError("give the body as FILE or --body-file, not both")
    source = body_file if body_file is not None else file
    body = read_input(source, what="body")
    at = int(time.time()) if timestamp is None else timestamp
    signature = sign_body(webhook_secrets(secret)[0], at, body)
    command = _curl_command(curl, signature, at, body, source) if curl else None
    show_signature(signature, at, command, output_format)


def _curl_command(url: str, signature: str, timestamp: int, body: bytes, source: str | None) -> str:
    """A curl command that sends ``body`` byte for byte.

    A body read from a file is sent by reference with ``--data-binary @file``
    (``-d @file`` would strip its newlines). One read from stdin is quoted
    inline with ``--data-raw``, which never reads ``@`` as a file name; that
    works for any UTF-8 text without NUL bytes.
    """
    if source not in (None, "-"):
        data_option, data = "--data-binary", "@" + str(Path(source).expanduser().resolve())
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = "\0"
        if "\0" in text:
            raise UsageError("--curl needs a UTF-8 body on stdin; pass a binary body as a file")
        data_option, data = "--data-raw", text
    parts = [
        "curl",
        "-X",
        "POST",
        url,
        "-H",
        "Content-Type: application/json",
        "-H",
        f"{SIGNATURE_HEADER}: {signature}",
        "-H",
        f"{TIMESTAMP_HEADER}: {timestamp}",
        data_option,
        data,
    ]
    return " ".join(shlex.quote(part) for part in parts)
