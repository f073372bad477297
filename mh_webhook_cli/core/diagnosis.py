"""Explain a failed signature by finding the common mistake that reproduces it.

A bare "signature mismatch" sends developers guessing. Instead we rebuild what
the signer may have signed, one plausible mistake at a time (and pairs of
them: a re-serialized body *and* a secret with a trailing newline happen
together), and report each mistake whose signature equals the one received.
When none does, the secret itself is most likely wrong.

Every candidate is an in-memory HMAC over a variant of the body, secret or
signed prefix: pure computation, a few hundred HMACs and a few dozen JSON
re-serializations for a typical event (bodies over 256 KiB skip the latter).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mh_webhook_cli.core.signing import Reason

MILLISECOND_SEARCH_MAX_BODY = 64 * 1024
"""Above this size we only try the exact millisecond, not all thousand of them."""
RESERIALIZE_MAX_BODY = 256 * 1024
"""Above this size we do not re-serialize the JSON 32 ways: each costs a parse of the body."""

_HEX = re.compile(r"[0-9a-fA-F]+")
_PREFIXED = re.compile(r"(?i)(sha256|v1|hmac-sha256)[=:](.*)")


@dataclass(frozen=True)
class Hint:
    """One common mistake that explains a failed verification."""

    code: str
    message: str


@dataclass(frozen=True)
class _Variant:
    """Something the signer may have used instead of what was received."""

    value: Any
    hints: tuple[Hint, ...] = ()


def diagnose(
    body: bytes,
    received_signature: str,
    raw_timestamp: str,
    secrets: Sequence[str],
    reason: Reason,
) -> list[Hint]:
    """Hints that explain why ``received_signature`` failed with ``reason``."""
    if reason in (Reason.TIMESTAMP_TOO_OLD, Reason.TIMESTAMP_IN_FUTURE):
        return _timestamp_hints(raw_timestamp, reason)
    digest, format_hints = _decode_signature(received_signature)
    if digest is None:
        return format_hints
    timestamp = raw_timestamp.strip()
    for depth in (0, 1, 2):
        found = _explanations(body, timestamp, secrets, digest, depth)
        if found is not None:
            return _unique(format_hints + found)
    many = f"none of the {len(secrets)} secrets" if len(secrets) > 1 else "the secret"
    return [
        *format_hints,
        Hint(
            "wrong_secret",
            "No common mistake explains the mismatch: most likely "
            f"{many} is not the one this endpoint was created with (each endpoint in "
            "Magic Hour's Developer Hub has its own secret), or the body was changed in a way "
            "mhw does not recognise.",
        ),
    ]


def _explanations(
    body: bytes, timestamp: str, secrets: Sequence[str], digest: bytes, depth: int
) -> list[Hint] | None:
    """Hints of every combination of exactly ``depth`` mistakes that reproduces ``digest``.

    None when no such combination does; an empty list when one does with no
    mistake at all (the signature only had the wrong form, such as upper case).
    """
    # Pairs of mistakes try only the exact millisecond: a thousand of them for
    # every body and secret variant would cost seconds for a rare combination.
    every_millisecond = depth < 2 and len(body) <= MILLISECOND_SEARCH_MAX_BODY
    dimensions = [
        list(_body_variants(body)),
        [v for s in secrets for v in _secret_variants(s)],
        list(_prefix_variants(timestamp, every_millisecond)),
    ]
    found: list[Hint] | None = None
    for combination in itertools.product(*dimensions):
        mistakes = [hint for variant in combination for hint in variant.hints]
        if sum(1 for variant in combination if variant.hints) != depth:
            continue
        signed_body, secret, prefixes = (variant.value for variant in combination)
        mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
        for prefix in prefixes:
            candidate = mac.copy()
            candidate.update(prefix + signed_body)
            if hmac.compare_digest(candidate.digest(), digest):
                found = [*(found or []), *mistakes]
                break
    return None if found is None else _unique(found)


def _decode_signature(received: str) -> tuple[bytes | None, list[Hint]]:
    """The 32-byte digest the sender meant, and hints about how its form is wrong."""
    hints: list[Hint] = []
    text = received.strip()
    prefixed = _PREFIXED.fullmatch(text)
    if prefixed:
        hints.append(
            Hint(
                "sha256_prefix",
                f"The signature carries a '{prefixed.group(1)}=' prefix: Magic Hour sends bare "
                "hex, so strip the prefix before comparing (or stop adding it when signing).",
            )
        )
        text = prefixed.group(2).strip()
    if _HEX.fullmatch(text):
        if len(text) != 64:
            hints.append(
                Hint(
                    "truncated_signature",
                    f"The signature has {len(text)} hex characters instead of 64: "
                    "it was cut short, perhaps copied from a log or a doc that abbreviates it.",
                )
            )
            return None, hints
        if text != text.lower():
            hints.append(
                Hint(
                    "uppercase_hex",
                    "The signature is upper-case hex: Magic Hour's is lower case, and a plain "
                    "string comparison is case-sensitive. Use lower-case hex (hexdigest()).",
                )
            )
        return bytes.fromhex(text), hints
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == hashlib.sha256().digest_size:
        hints.append(
            Hint(
                "base64_signature",
                "The signature is base64, not hex: Magic Hour sends the HMAC-SHA256 digest as "
                "lower-case hex (hexdigest(), not b64encode(digest())).",
            )
        )
        return decoded, hints
    hints.append(
        Hint(
            "unreadable_signature",
            "The signature is neither hex nor base64 of a SHA-256 digest: "
            "check that the right header is being read.",
        )
    )
    return None, hints


_NEWLINE_ADDED = Hint(
    "body_newline_added",
    "The body received ends with a newline that the signed body did not have "
    "(an editor, echo or print added it): verify the bytes exactly as sent.",
)


def _body_variants(body: bytes) -> Iterator[_Variant]:
    """The received body, then bodies the signer may have signed instead."""
    yield _Variant(body)
    if body.endswith(b"\n"):
        yield _Variant(
            body.rstrip(b"\r\n"),
            (_NEWLINE_ADDED,),
        )
    for ending in (b"\n", b"\r\n"):
        yield _Variant(
            body + ending,
            (
                Hint(
                    "body_newline_stripped",
                    "The signed body ended with a newline that the body received lacks "
                    "(curl -d @file strips newlines; use --data-binary to send exact bytes).",
                ),
            ),
        )
    if b"\r\n" in body:
        yield _Variant(
            body.replace(b"\r\n", b"\n"),
            (
                Hint(
                    "body_crlf",
                    "The body received has CRLF line endings where the signed body had LF: "
                    "something converted line endings (a Windows editor, git autocrlf, a proxy).",
                ),
            ),
        )
    elif b"\n" in body:
        yield _Variant(
            body.replace(b"\n", b"\r\n"),
            (
                Hint(
                    "body_crlf",
                    "The signed body had CRLF line endings where the body received has LF.",
                ),
            ),
        )
    if len(body) <= RESERIALIZE_MAX_BODY:
        yield from _reserialized_variants(body)


def _reserialized_variants(body: bytes) -> Iterator[_Variant]:
    """The same JSON as the signer's serializer may have written it."""
    try:
        received_text = body.decode("utf-8")
        document = json.loads(received_text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return
    seen = {body}
    for envelope, sort_keys, ensure_ascii, layout in itertools.product(
        (False, True), (False, True), (False, True), tuple(_LAYOUTS)
    ):
        data = _swap_envelope(document) if envelope else document
        if data is None:
            continue
        text = _dump(data, layout, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
        candidate = text.encode("utf-8")
        if candidate in seen:
            continue
        seen.add(candidate)
        hints = _reserialization_hints(received_text, text, layout, envelope)
        if hints and received_text.endswith("\n"):
            # No serializer ends its JSON with a newline: something added it after signing.
            hints.append(_NEWLINE_ADDED)
        if hints:
            yield _Variant(candidate, tuple(hints))


_LAYOUTS: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":")},
    "python": {},
    "indent2": {"indent": 2},
    "indent4": {"indent": 4},
}


def _dump(data: Any, layout: str, *, sort_keys: bool, ensure_ascii: bool) -> str:
    return json.dumps(data, sort_keys=sort_keys, ensure_ascii=ensure_ascii, **_LAYOUTS[layout])


def _swap_envelope(document: Any) -> Any:
    """The event with ``payload`` renamed ``object`` or back, in place of the key."""
    if not isinstance(document, dict):
        return None
    renames = {"payload": "object", "object": "payload"}
    if not any(key in renames for key in document):
        return None
    return {renames.get(key, key): value for key, value in document.items()}


def _layout_of(text: str) -> str:
    # A newline at the end is not pretty-printing (an editor or echo added it; a hint of
    # its own says so): only one between the values is.
    if "\n" in text.rstrip():
        return "pretty"
    if re.search(r'[\]}"\d el],\s|":\s', text):
        return "python"
    return "compact"


_LAYOUT_WORDS = {
    "compact": "compact JSON (no spaces)",
    "python": "Python's json.dumps default separators ', ' and ': ' "
    "(what requests.post(json=...) sends)",
    "pretty": "pretty-printed JSON",
}


def _reserialization_hints(received: str, signed: str, layout: str, envelope: bool) -> list[Hint]:
    hints: list[Hint] = []
    received_layout = _layout_of(received)
    signed_layout = "pretty" if layout.startswith("indent") else layout
    if received_layout != signed_layout:
        code = {"pretty": "body_pretty_printed", "python": "body_python_separators"}.get(
            received_layout if received_layout != "compact" else signed_layout,
            "body_reserialized",
        )
        hints.append(
            Hint(
                code,
                "The body was re-serialized between signing and checking: the signature is over "
                f"{_LAYOUT_WORDS[signed_layout]}, "
                f"the body checked is {_LAYOUT_WORDS[received_layout]}. "
                "Sign and verify the raw bytes exactly as sent; never json.dumps a parsed body.",
            )
        )
    if ("\\u" in signed) != ("\\u" in received):
        escaped_side = "signed body" if "\\u" in signed else "body checked"
        hints.append(
            Hint(
                "body_ascii_escaped",
                f"Non-ASCII characters are \\uXXXX-escaped in the {escaped_side} only "
                "(json.dumps' ensure_ascii=True): the bytes differ although the JSON is the same.",
            )
        )
    if _key_orders(signed) != _key_orders(received):
        hints.append(
            Hint(
                "body_keys_reordered",
                "The JSON keys are in a different order in the signed body than in the body "
                "checked (sort_keys, or a framework that rebuilds objects): verify the raw bytes.",
            )
        )
    if envelope:
        hints.append(
            Hint(
                "body_object_envelope",
                'The signed body wraps the event as {"type", "object"} (as the example in the '
                'webhook spec\'s prose does) while the body checked uses {"type", "payload"}, '
                'or the reverse: Magic Hour sends "payload".',
            )
        )
    return hints


def _key_orders(text: str) -> list[list[str]]:
    """The key order of every object in ``text``, with the envelope's key names unified."""
    orders: list[list[str]] = []

    def remember(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        orders.append(["payload" if key == "object" else key for key, _ in pairs])
        return dict(pairs)

    json.loads(text, object_pairs_hook=remember)
    return orders


def _secret_variants(secret: str) -> Iterator[_Variant]:
    yield _Variant(secret)
    stripped = secret.strip()
    if stripped != secret:
        yield _Variant(
            stripped,
            (
                Hint(
                    "secret_whitespace",
                    "The secret given here has surrounding whitespace or a newline; without it "
                    "the signature matches. Trim it where it is stored (.env files, echo).",
                ),
            ),
        )
    unquoted = stripped.strip("\"'")
    if unquoted != stripped:
        yield _Variant(
            unquoted,
            (
                Hint(
                    "secret_quotes",
                    "The secret given here is wrapped in quotes; without them the signature "
                    "matches. Remove the quotes where it is stored (.env files, YAML).",
                ),
            ),
        )
    for extra, code, what in (
        ("\n", "secret_whitespace", "a trailing newline"),
        (" ", "secret_whitespace", "a trailing space"),
    ):
        yield _Variant(
            secret + extra,
            (
                Hint(
                    code,
                    f"The signer's secret had {what}: it was read from a file or an env var "
                    "without trimming. Trim the secret before signing.",
                ),
            ),
        )
    for quote in ('"', "'"):
        yield _Variant(
            quote + secret + quote,
            (
                Hint(
                    "secret_quotes",
                    "The signer's secret was wrapped in quotes (copied with them into a .env "
                    "or YAML file): remove them.",
                ),
            ),
        )


def _prefix_variants(timestamp: str, every_millisecond: bool) -> Iterator[_Variant]:
    """What was put before the body: ``"{timestamp}."``, nothing, or milliseconds."""
    yield _Variant([f"{timestamp}.".encode()])
    yield _Variant(
        [b""],
        (
            Hint(
                "signed_without_timestamp",
                "The signature is over the body alone: the signed payload must be "
                '"{timestamp}.{body}", the timestamp header, a dot, then the raw body.',
            ),
        ),
    )
    seconds = int(timestamp)
    milliseconds = range(seconds * 1000, seconds * 1000 + (1000 if every_millisecond else 1))
    yield _Variant(
        [f"{ms}.".encode() for ms in milliseconds],
        (
            Hint(
                "millisecond_timestamp",
                "The signature was computed with a millisecond timestamp: Magic Hour uses Unix "
                "seconds in both the header and the signed payload.",
            ),
        ),
    )


def _timestamp_hints(raw_timestamp: str, reason: Reason) -> list[Hint]:
    if len(raw_timestamp.strip()) >= 13:
        return [
            Hint(
                "millisecond_timestamp",
                "The timestamp looks like milliseconds: Magic Hour's is in Unix seconds.",
            )
        ]
    if reason is Reason.TIMESTAMP_TOO_OLD:
        return [
            Hint(
                "genuine_but_stale",
                "The signature is genuine; only the timestamp is outside the window. Either the "
                "request was replayed or delayed, or a clock is off; an old capture must be "
                "judged as of the time it was received.",
            )
        ]
    return [
        Hint(
            "clock_skew",
            "The signature is genuine but the timestamp is in the future: this machine's clock "
            "is probably behind (check NTP).",
        )
    ]


def _unique(hints: list[Hint]) -> list[Hint]:
    return list(dict.fromkeys(hints))
