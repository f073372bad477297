"""How a verdict looks (``mhw verify``): a rich form for people, a JSON form for machines.

Each result type has one ``*_text`` function (styled lines, see
:mod:`mh_webhook_cli.report.console`) and one ``*_json`` function (plain data), side
by side, so the two views cannot drift apart in what they say; :func:`show_verification`
picks one for the output format asked for.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mh_webhook_cli.core.settings import mask
from mh_webhook_cli.core.signing import Reason
from mh_webhook_cli.core.times import describe_age, utc_iso
from mh_webhook_cli.core.verification import VerifyResult
from mh_webhook_cli.report.console import Format, Line, columns, emit_json, show


def show_verification(
    result: VerifyResult,
    body: bytes,
    secrets: list[str],
    notes: list[str],
    output_format: Format,
) -> None:
    """The verdict on stdout in ``output_format``."""
    if output_format is Format.JSON:
        emit_json(verify_json(result, body, secrets, notes))
    else:
        show(verify_text(result, body, secrets, notes))


def verify_json(
    result: VerifyResult, body: bytes, secrets: list[str], notes: list[str]
) -> dict[str, Any]:
    """The verdict as data: everything the text view shows, with secrets masked."""
    return {
        "valid": result.valid,
        "reason": result.reason.value,
        "message": result.reason.explanation,
        "hints": [hint.message for hint in result.hints],
        "hint_codes": [hint.code for hint in result.hints],
        "received_signature": result.received_signature,
        "expected_signature": result.expected_signature,
        "timestamp": result.timestamp,
        "timestamp_utc": None if result.timestamp is None else utc_iso(result.timestamp),
        "age_seconds": None if result.age_seconds is None else round(result.age_seconds, 3),
        "tolerance_seconds": result.tolerance_seconds,
        "secrets": [mask(secret) for secret in secrets],
        "matched_secret_index": result.matched_secret_index,
        "body_bytes": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "notes": notes,
    }


def verify_text(
    result: VerifyResult, body: bytes, secrets: list[str], notes: list[str]
) -> list[Line]:
    """The verdict for people: what failed, why, and the values to compare."""
    lines: list[Line] = []
    if result.valid:
        lines.append([("✓ valid", "bold green"), ("  " + result.reason.explanation, "")])
    else:
        lines.append(
            [
                ("✗ invalid", "bold red"),
                ("  ", ""),
                (result.reason.value, "bold"),
                ("  " + result.reason.explanation, ""),
            ]
        )
    if result.hints:
        lines += ["", [("Why:", "bold")]]
        lines += [f"  • {hint.message}" for hint in result.hints]

    facts: list[tuple[str, str]] = []
    if result.received_signature is not None:
        facts.append(("received", result.received_signature))
    if result.expected_signature is not None:
        facts.append(("expected", result.expected_signature))
    if result.timestamp is not None and result.age_seconds is not None:
        checked = "" if result.tolerance_seconds else "  (age not checked)"
        facts.append(
            (
                "timestamp",
                f"{result.timestamp}  {utc_iso(result.timestamp) or 'beyond year 9999'}, "
                f"{describe_age(result.age_seconds)}{checked}",
            )
        )
    used = ", ".join(mask(secret) for secret in secrets)
    if result.matched_secret_index is not None and len(secrets) > 1:
        used += f"  (matched secret {result.matched_secret_index + 1} of {len(secrets)})"
    facts.append(("secret", used))
    facts.append(("body", f"{len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:16]}…"))
    lines.append("")
    lines += columns([[(name, "dim"), (value, "")] for name, value in facts])

    lines += [[(f"note: {note}", "dim")] for note in notes]
    if result.reason is Reason.TIMESTAMP_TOO_OLD:
        lines.append(
            "tip: judge an old capture as of when it arrived with --at, or use --tolerance 0."
        )
    if result.valid:
        lines.append(
            [
                (
                    "tip: if your handler rejects this request, it is checking other bytes (a "
                    "re-serialized body) or another secret than these.",
                    "dim",
                )
            ]
        )
    return lines
