"""Sign a body as Magic Hour would: print the two headers, or a ready curl command."""

import time
from typing import Annotated

import typer

from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.options import (
    FormatOption,
    SigningSecretOption,
    http_url,
    read_input,
    signing_secret,
)
from mh_webhook_cli.core.signing import sign as sign_body
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format
from mh_webhook_cli.report.sign import curl_command, show_signature

EXAMPLES = examples(
    "mhw sign event.json",
    "mhw sign event.json --curl http://127.0.0.1:8000/webhook",
    "echo '{}' | mhw sign --timestamp 1700000000 --format json",
)


def sign(
    file: Annotated[
        str | None,
        typer.Argument(help="File holding the body; - or omitted reads stdin.", show_default=False),
    ] = None,
    body_file: Annotated[
        str | None,
        typer.Option("--body-file", "-b", help="Same as FILE.", show_default=False),
    ] = None,
    secret: SigningSecretOption = None,
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
    if curl is not None:
        http_url(curl, "--curl")
    source = body_file if body_file is not None else file
    body = read_input(source, what="body")
    at = int(time.time()) if timestamp is None else timestamp
    signature = sign_body(signing_secret(secret) or "", at, body)
    command = None if curl is None else curl_command(curl, signature, at, body, source)
    show_signature(signature, at, command, output_format)
