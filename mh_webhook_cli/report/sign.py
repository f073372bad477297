"""How a signature looks (``mhw sign``): two header lines, a curl command, or JSON.

Printed as is, not through :func:`~mh_webhook_cli.report.console.show`: every character is
mhw's own (hex, digits, a shell-quoted command), and the output is meant to be pasted, so
it must not be escaped or styled.
"""

from __future__ import annotations

from mh_webhook_cli.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
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
