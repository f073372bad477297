"""Magic Hour's webhook signature: signing and verification over raw bytes.

Magic Hour signs every delivery with two headers:

- ``magic-hour-event-timestamp``: Unix time in seconds, as decimal digits;
- ``magic-hour-event-signature``: lowercase hex of HMAC-SHA256, keyed with the
  whole webhook secret (UTF-8), over ``b"{timestamp}." + raw_body``.

Each header is sent once: a request that carries either twice (in any letter
case) is rejected as ambiguous, since frameworks disagree on which copy counts.

The body must be the bytes exactly as they were sent: parsing the JSON and
serializing it again produces other bytes and therefore another signature.
That mistake is the most common reason a handler rejects genuine events, so
:func:`~mh_webhook_cli.core.verification.verify` explains a mismatch: it is :func:`check`
plus :mod:`~mh_webhook_cli.core.diagnosis`, which this module never needs.

This module is pure: no I/O, and the clock is read only when the caller does
not pass ``now``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

from mh_webhook_cli.core.limits import DEFAULT_TOLERANCE_SECONDS as DEFAULT_TOLERANCE_SECONDS

SIGNATURE_HEADER = "magic-hour-event-signature"
TIMESTAMP_HEADER = "magic-hour-event-timestamp"

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,20}")


class Reason(str, Enum):
    """Why a request passed or failed verification: one code per result."""

    OK = "ok"
    MISSING_SIGNATURE = "missing_signature"
    MISSING_TIMESTAMP = "missing_timestamp"
    MALFORMED_SIGNATURE = "malformed_signature"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    SIGNATURE_MISMATCH = "signature_mismatch"
    AMBIGUOUS_HEADERS = "ambiguous_headers"

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self]


_EXPLANATIONS = {
    Reason.OK: "The signature matches the body, the timestamp and the secret.",
    Reason.MISSING_SIGNATURE: f"The request has no {SIGNATURE_HEADER} header.",
    Reason.MISSING_TIMESTAMP: f"The request has no {TIMESTAMP_HEADER} header.",
    Reason.MALFORMED_SIGNATURE: (
        "The signature is not 64 hexadecimal characters (a hex HMAC-SHA256 digest)."
    ),
    Reason.MALFORMED_TIMESTAMP: "The timestamp is not a whole number of seconds since the epoch.",
    Reason.TIMESTAMP_TOO_OLD: "The timestamp is older than the tolerance allows.",
    Reason.TIMESTAMP_IN_FUTURE: "The timestamp is further in the future than the tolerance allows.",
    Reason.SIGNATURE_MISMATCH: "The signature does not match the body, timestamp and secret.",
    Reason.AMBIGUOUS_HEADERS: (
        f"The request repeats the {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header (names "
        "ignore letter case): servers disagree on which copy counts, so it is rejected as "
        "ambiguous. Magic Hour sends each once."
    ),
}

Headers = Mapping[str, str] | Sequence[tuple[str, str]]
"""Request headers: a mapping, or (name, value) pairs in the order received (repeats kept)."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Return Magic Hour's signature of ``body`` sent at ``timestamp``.

    >>> sign("whsec", 0, b"")[:16]
    '0d1dbfdae9a6e257'
    """
    return signature_digest(secret, timestamp, body).hex()


def signature_digest(secret: str, timestamp: int | str, body: bytes) -> bytes:
    """The raw 32-byte HMAC behind :func:`sign`."""
    inner, outer = _keyed_hashes(secret)
    inner = inner.copy()
    inner.update(b"%s.%s" % (str(timestamp).encode(), body))
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.digest()


_BLOCK_BYTES = 64
"""SHA-256's block: what RFC 2104 pads the key to."""
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


@functools.lru_cache(maxsize=64)
def _keyed_hashes(secret: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 already fed the secret's inner and outer pad: HMAC as RFC 2104 defines it,
    and as the standard library's ``hmac.HMAC`` computes it, with the pads hashed once per
    secret instead of once per request.

    ``hmac.digest`` looks the hash up by name and hashes both pads for every call: 3 us of
    the ~60 a listener spends per request (5% of its CPU, in alternated A/B runs under
    bench/listen.py's load). tests/test_signing.py holds this to ``hmac.digest`` for keys
    of every length around the block size.
    """
    key = secret.encode("utf-8")
    if len(key) > _BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK_BYTES, b"\0")
    return hashlib.sha256(key.translate(_INNER_PAD)), hashlib.sha256(key.translate(_OUTER_PAD))


def header_value(headers: Headers, name: str) -> str | None:
    """Look a header up by name, ignoring case as HTTP does; the first one when repeated."""
    lowered = name.lower()
    for key, value in pairs(headers):
        if key.lower() == lowered:
            return value
    return None


def repeats_signature_header(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether the signature or the timestamp header appears more than once, in any letter case.

    One request with two signatures is ambiguous: one framework keeps the first, another the
    last, so a forger who adds a second copy could get different verdicts from a proxy and a
    handler. Every verifier in mhw asks this one function and rejects such a request.
    A listener calls it only when the server saw some header name twice.
    """
    seen: set[str] = set()
    for name, _ in headers:
        lowered = name.lower()
        if lowered in (SIGNATURE_HEADER, TIMESTAMP_HEADER):
            if lowered in seen:
                return True
            seen.add(lowered)
    return False


def pairs(headers: Headers) -> Iterable[tuple[str, str]]:
    return headers.items() if isinstance(headers, Mapping) else headers


def parse_timestamp(value: str) -> int | None:
    """The header's Unix seconds, or None when it is not a plain whole number."""
    value = value.strip()
    return int(value) if _TIMESTAMP.fullmatch(value) else None


def check(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    secrets: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> tuple[Reason, int | None]:
    """The verdict on a request from its two header values, and which secret matched.

    This is :func:`verify`'s decision without its explanation: a listener
    calls it for every request it receives, so it builds nothing but the
    answer (a frozen result costs as much as the HMAC). The secret's index is
    None unless the verdict is :attr:`Reason.OK`. The timestamp is signed as
    the header has it, digits as sent. Given one value per header, it cannot
    see a repeated one: a caller holding the header list asks
    :func:`repeats_signature_header` first, as the listener does.
    """
    if isinstance(secrets, str):  # one secret, not one per character
        secrets = (secrets,)
    if not secrets:
        raise ValueError("check() needs at least one secret")
    signature = signature.strip() if signature else ""
    if not signature:
        return Reason.MISSING_SIGNATURE, None
    timestamp = timestamp.strip() if timestamp else ""
    if not timestamp:
        return Reason.MISSING_TIMESTAMP, None
    if not _TIMESTAMP.fullmatch(timestamp):
        return Reason.MALFORMED_TIMESTAMP, None
    if not _HEX_DIGEST.fullmatch(signature):
        return Reason.MALFORMED_SIGNATURE, None
    # The signature is checked before the age, so that a stale but genuine request
    # says timestamp_too_old rather than hiding a wrong secret.
    matched = _first_match(body, timestamp, secrets, signature)
    if matched is None:
        return Reason.SIGNATURE_MISMATCH, None
    if tolerance > 0:
        age = (time.time() if now is None else now) - int(timestamp)
        if age > tolerance:
            return Reason.TIMESTAMP_TOO_OLD, None
        if -age > tolerance:
            return Reason.TIMESTAMP_IN_FUTURE, None
    return Reason.OK, matched


def _first_match(body: bytes, timestamp: str, secrets: Sequence[str], received: str) -> int | None:
    """Index of the secret whose signature equals ``received``, compared in constant time."""
    for index, secret in enumerate(secrets):
        if hmac.compare_digest(sign(secret, timestamp, body), received):
            return index
    return None
