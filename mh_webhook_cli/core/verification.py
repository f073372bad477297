"""The verdict on a received request with what explains it: :func:`verify`.

:func:`~mh_webhook_cli.core.signing.check` decides (the listener's fast path, a bare
reason); :func:`verify` adds what a person needs: the expected signature, the
timestamp's age and, on a mismatch, the hints :mod:`~mh_webhook_cli.core.diagnosis`
finds. Kept apart from signing so that signing and diagnosis never import each other:
diagnosis needs signing's :class:`~mh_webhook_cli.core.signing.Reason`, this module
needs both.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mh_webhook_cli.core.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Headers,
    Reason,
    check,
    header_value,
    pairs,
    parse_timestamp,
    repeats_signature_header,
    sign,
)

if TYPE_CHECKING:  # diagnosis is imported on first mismatch (see verify)
    from mh_webhook_cli.core.diagnosis import Hint


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on one request, with what a person needs to understand it.

    ``expected_signature`` is what the first secret gives for this body and
    timestamp: showing it is safe (an HMAC does not reveal its key) and lets
    a developer compare it with what their own code computes.
    """

    valid: bool
    reason: Reason
    received_signature: str | None = None
    expected_signature: str | None = None
    timestamp: int | None = None
    age_seconds: float | None = None
    """How long before ``now`` the timestamp lies; negative when it is in the future."""
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    matched_secret_index: int | None = None
    """Which of several secrets matched (key rotation); None when none did."""
    hints: tuple[Hint, ...] = field(default=())

    def __bool__(self) -> bool:
        return self.valid


def verify(
    body: bytes,
    headers: Headers,
    secret: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
    diagnose: bool = True,
) -> VerifyResult:
    """Verify a received request as Magic Hour signed it, with what explains the verdict.

    ``body`` must be the raw bytes as received. ``headers`` is a mapping or,
    better, the (name, value) pairs as received, so that a repeated signature
    header is seen (it is :attr:`Reason.AMBIGUOUS_HEADERS`); names are matched
    without regard to case. ``secret`` may be a list, so that
    a handler can accept both the old and the new secret while rotating.
    ``tolerance`` is the allowed distance between the timestamp and ``now``
    in either direction, in seconds; 0 turns the check off.

    On a mismatch, ``diagnose`` tries the common mistakes and reports those
    that explain it as ``hints`` (it costs a few hundred HMACs; a server under
    load from forged requests may want it off).
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("verify() needs at least one secret")
    if repeats_signature_header(pairs(headers)):
        return VerifyResult(False, Reason.AMBIGUOUS_HEADERS, tolerance_seconds=tolerance)
    received = (header_value(headers, SIGNATURE_HEADER) or "").strip()
    raw_timestamp = (header_value(headers, TIMESTAMP_HEADER) or "").strip()
    checked_at = time.time() if now is None else now
    reason, matched = check(
        body, received, raw_timestamp, secrets, tolerance=tolerance, now=checked_at
    )
    if reason is Reason.MISSING_SIGNATURE:
        return VerifyResult(False, reason, tolerance_seconds=tolerance)
    timestamp = parse_timestamp(raw_timestamp) if raw_timestamp else None
    if timestamp is None:
        return VerifyResult(False, reason, received, tolerance_seconds=tolerance)
    hints: tuple[Hint, ...] = ()
    if reason is not Reason.OK and diagnose:
        # Imported on first need: a listener verifies with check() and never diagnoses.
        from mh_webhook_cli.core.diagnosis import diagnose as find_hints

        hints = tuple(find_hints(body, received, raw_timestamp, secrets, reason))
    return VerifyResult(
        reason is Reason.OK,
        reason,
        received,
        sign(secrets[0], raw_timestamp, body),  # as check() signs it: the digits as sent
        timestamp,
        checked_at - timestamp,
        tolerance,
        matched,
        hints,
    )


def with_signature_headers(
    headers: Sequence[tuple[str, str]], signature: str | None, timestamp: str | None
) -> list[tuple[str, str]]:
    """``headers`` with the signature and timestamp headers given (not None) in place of
    theirs, every copy of them, so that one can ask "would this capture verify with that
    signature?"."""
    given = [(SIGNATURE_HEADER, signature), (TIMESTAMP_HEADER, timestamp)]
    replaced = {name for name, value in given if value is not None}
    kept = [(name, value) for name, value in headers if name.lower() not in replaced]
    return kept + [(name, value) for name, value in given if value is not None]
