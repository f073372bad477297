"""How a signature looks (``mhw sign``): two header lines, a curl command, or JSON.

Printed as is, not through :func:`~mh_webhook_cli.report.console.show`: every character is
mhw's own (hex, digits, a shell-quoted command) and the output is meant to be pasted, so
it must not be escaped or styled; :func:`curl_command` quotes the one part that is not.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from mh_webhook_cli.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format, emit_json


def show_signature(signature: str, timestamp: int, curl: str | None, output_format: Format) -> None:
    """The signature and its timestamp, or ``curl``, the command that sends them."""
    if output_format is Format.JSON:
        result: dict[str, object] = {"signature": signature, "timestamp": timestamp}
        if curl:
            result["curl"] = curl
        emit_json(result)
    elif curl:
        print(curl)
    else:
        print(f"{SIGNATURE_HEADER}: {signature}")
        print(f"{TIMESTAMP_HEADER}: {timestamp}")


def curl_command(url: str, signature: str, timestamp: int, body: bytes, source: str | None) -> str:
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
