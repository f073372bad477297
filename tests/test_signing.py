"""The signing core: pinned vectors, properties, and every reason code."""

from __future__ import annotations

import doctest
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mh_webhook_cli import Reason, sign, verify
from mh_webhook_cli.core import signing

# Computed independently with: printf '%s' "$T.$BODY" | openssl dgst -sha256 -hmac "$SECRET"
VECTORS = [
    (
        "mhw_live_0123456789abcdef0123456789abcdef",
        1730742038,
        b'{"type":"video.started","payload":{"id":"clx7uu86w0a5qp55yxz315r6r","status":"rendering"}}',
        "a84104f53726829ed605f1f136510ba8c6f8e17b7676a99280f617a38de62554",
    ),
    ("whsec", 0, b"", "0d1dbfdae9a6e257f2fa78f48d7310b9ac3ba418a71f5ee3afe129f3c6c15578"),
    (
        "mhw_live_Ünïcødé",
        1700000000,
        '{"name":"Café ☕"}'.encode(),
        "cca5379a1d22d0f8d43b46b49226016a71e9d3e4781bbe18f53d1d79967d16de",
    ),
]
NOW = 1730742038


def headers(signature: str | None, timestamp: int | str | None) -> dict[str, str]:
    result = {}
    if signature is not None:
        result["magic-hour-event-signature"] = signature
    if timestamp is not None:
        result["magic-hour-event-timestamp"] = str(timestamp)
    return result


@pytest.mark.parametrize(("secret", "timestamp", "body", "expected"), VECTORS)
def test_sign_matches_pinned_vectors(
    secret: str, timestamp: int, body: bytes, expected: str
) -> None:
    assert sign(secret, timestamp, body) == expected
    assert sign(secret, str(timestamp), body) == expected


@pytest.mark.parametrize(("secret", "timestamp", "body", "expected"), VECTORS)
def test_verify_accepts_pinned_vectors(
    secret: str, timestamp: int, body: bytes, expected: str
) -> None:
    result = verify(body, headers(expected, timestamp), secret, now=timestamp + 10)
    assert result.valid and result.reason is Reason.OK
    assert result.expected_signature == expected
    assert result.age_seconds == 10


@pytest.mark.parametrize("key_bytes", [0, 1, 31, 32, 63, 64, 65, 127, 128, 200, 4096])
def test_the_signature_is_the_standard_librarys_hmac_for_keys_of_every_length(
    key_bytes: int,
) -> None:
    """mhw hashes a secret's HMAC pads once and reuses them: around SHA-256's 64-byte block
    (a longer key is hashed first) it must give exactly what hmac.digest gives."""
    secret = ("é" * key_bytes)[: key_bytes // 2] + "k" * (key_bytes % 2)  # 2-byte characters
    assert len(secret.encode()) == key_bytes
    for timestamp, body in ((0, b""), (1730742038, b"x" * 1000), ("007", bytes(range(256)))):
        message = f"{timestamp}.".encode() + body
        expected = hmac.digest(secret.encode(), message, "sha256")
        assert signing.signature_digest(secret, timestamp, body) == expected
        assert sign(secret, timestamp, body) == expected.hex()  # and again, from the cache


@given(secret=st.text(), timestamp=st.integers(0, 2**40), body=st.binary())
def test_the_signature_is_hmac_sha256_for_any_secret(
    secret: str, timestamp: int, body: bytes
) -> None:
    message = f"{timestamp}.".encode() + body
    assert sign(secret, timestamp, body) == hmac.new(secret.encode(), message, "sha256").hexdigest()


def test_docstring_example_holds() -> None:
    assert doctest.testmod(signing).failed == 0


@given(secret=st.text(min_size=1), timestamp=st.integers(0, 2**40), body=st.binary())
def test_sign_then_verify_holds(secret: str, timestamp: int, body: bytes) -> None:
    signature = sign(secret, timestamp, body)
    assert verify(body, headers(signature, timestamp), secret, now=timestamp).valid


@given(body=st.binary(min_size=1), position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_changed_body_byte_fails(body: bytes, position: int, flip: int) -> None:
    signature = sign("s3cret-value", NOW, body)
    index = position % len(body)
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    result = verify(tampered, headers(signature, NOW), "s3cret-value", now=NOW, diagnose=False)
    assert result.reason is Reason.SIGNATURE_MISMATCH


@given(body=st.binary(), delta=st.integers(1, 10**6))
def test_any_changed_timestamp_fails(body: bytes, delta: int) -> None:
    signature = sign("s3cret-value", NOW, body)
    result = verify(
        body, headers(signature, NOW + delta), "s3cret-value", tolerance=0, diagnose=False
    )
    assert result.reason is Reason.SIGNATURE_MISMATCH


@given(body=st.binary(), position=st.integers(0, 63), digit=st.sampled_from("0123456789abcdef"))
def test_any_changed_signature_character_fails(body: bytes, position: int, digit: str) -> None:
    signature = sign("s3cret-value", NOW, body)
    changed = signature[:position] + digit + signature[position + 1 :]
    result = verify(body, headers(changed, NOW), "s3cret-value", now=NOW, diagnose=False)
    assert result.valid == (changed == signature)


def test_header_names_are_case_insensitive() -> None:
    body = b'{"type":"image.completed"}'
    mixed = {
        "Magic-Hour-Event-Signature": sign("k" * 20, NOW, body),
        "MAGIC-HOUR-EVENT-TIMESTAMP": str(NOW),
    }
    assert verify(body, mixed, "k" * 20, now=NOW).valid


def test_several_secrets_accept_either_and_report_which() -> None:
    body = b"{}"
    signature = sign("new-secret-value", NOW, body)
    result = verify(
        body, headers(signature, NOW), ["old-secret-value", "new-secret-value"], now=NOW
    )
    assert result.valid and result.matched_secret_index == 1
    wrong = verify(body, headers(signature, NOW), ["old-secret-value", "other"], now=NOW)
    assert wrong.reason is Reason.SIGNATURE_MISMATCH and wrong.matched_secret_index is None


def test_no_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        verify(b"{}", headers("0" * 64, NOW), [], now=NOW)


BODY = b'{"type":"audio.completed"}'
GOOD = sign("secret-secret-secret", NOW, BODY)


@pytest.mark.parametrize(
    ("given_headers", "now", "tolerance", "reason"),
    [
        (headers(GOOD, NOW), NOW, 300, Reason.OK),
        (headers(None, NOW), NOW, 300, Reason.MISSING_SIGNATURE),
        (headers("  ", NOW), NOW, 300, Reason.MISSING_SIGNATURE),
        (headers(GOOD, None), NOW, 300, Reason.MISSING_TIMESTAMP),
        (headers(GOOD, "2024-10-19T05:10:19Z"), NOW, 300, Reason.MALFORMED_TIMESTAMP),
        (headers(GOOD, "1730742038.5"), NOW, 300, Reason.MALFORMED_TIMESTAMP),
        (headers(GOOD, "-5"), NOW, 300, Reason.MALFORMED_TIMESTAMP),
        (headers("abc123", NOW), NOW, 300, Reason.MALFORMED_SIGNATURE),
        (headers(GOOD + "00", NOW), NOW, 300, Reason.MALFORMED_SIGNATURE),
        (headers(GOOD, NOW), NOW + 300, 300, Reason.OK),
        (headers(GOOD, NOW), NOW + 301, 300, Reason.TIMESTAMP_TOO_OLD),
        (headers(GOOD, NOW), NOW - 300, 300, Reason.OK),
        (headers(GOOD, NOW), NOW - 301, 300, Reason.TIMESTAMP_IN_FUTURE),
        (headers(GOOD, NOW), NOW + 10**9, 0, Reason.OK),
        (headers(GOOD, NOW), NOW + 61, 60, Reason.TIMESTAMP_TOO_OLD),
        (headers("0" * 64, NOW), NOW, 300, Reason.SIGNATURE_MISMATCH),
        (headers(GOOD, NOW + 1), NOW, 300, Reason.SIGNATURE_MISMATCH),
    ],
)
def test_every_reason_code(
    given_headers: dict[str, str], now: int, tolerance: int, reason: Reason
) -> None:
    result = verify(BODY, given_headers, "secret-secret-secret", tolerance=tolerance, now=now)
    assert result.reason is reason
    assert result.valid is (reason is Reason.OK)
    assert bool(result) is result.valid
    # The listener's lean check decides exactly as verify does.
    checked = signing.check(
        BODY,
        given_headers.get(signing.SIGNATURE_HEADER),
        given_headers.get(signing.TIMESTAMP_HEADER),
        ["secret-secret-secret"],
        tolerance=tolerance,
        now=now,
    )
    assert checked == (reason, 0 if reason is Reason.OK else None)


def test_the_timestamp_is_signed_as_sent_and_expected_agrees_with_the_verdict() -> None:
    padded = f"0{NOW}"
    as_sent = sign("secret-secret-secret", padded, BODY)
    as_number = sign("secret-secret-secret", NOW, BODY)
    good = verify(BODY, headers(as_sent, padded), "secret-secret-secret", now=NOW)
    assert good.reason is Reason.OK
    assert good.expected_signature == good.received_signature
    bad = verify(BODY, headers(as_number, padded), "secret-secret-secret", now=NOW)
    assert bad.reason is Reason.SIGNATURE_MISMATCH
    assert bad.expected_signature != bad.received_signature


def test_check_takes_one_secret_as_a_string_not_as_characters() -> None:
    forged = sign("s", NOW, BODY)  # signed with one character of the secret
    assert signing.check(BODY, forged, str(NOW), "secret-secret-secret", now=NOW)[0] is (
        Reason.SIGNATURE_MISMATCH
    )
    assert signing.check(BODY, GOOD, str(NOW), "secret-secret-secret", now=NOW) == (Reason.OK, 0)
    with pytest.raises(ValueError, match="at least one secret"):
        signing.check(BODY, GOOD, str(NOW), [], now=NOW)


def test_signature_is_checked_before_the_age() -> None:
    """A stale request signed with the wrong secret must not hide the wrong secret."""
    forged = sign("someone-elses-secret", NOW, BODY)
    result = verify(BODY, headers(forged, NOW), "secret-secret-secret", now=NOW + 3600)
    assert result.reason is Reason.SIGNATURE_MISMATCH


def test_reserialized_json_does_not_verify() -> None:
    """The central pitfall: the same JSON in other bytes has another signature."""
    event = {"type": "video.completed", "payload": {"id": "clx", "status": "complete"}}
    sent = json.dumps(event, separators=(",", ":")).encode()
    reserialized = json.dumps(json.loads(sent)).encode()
    signature = sign("secret-secret-secret", NOW, sent)
    assert verify(sent, headers(signature, NOW), "secret-secret-secret", now=NOW).valid
    assert not verify(reserialized, headers(signature, NOW), "secret-secret-secret", now=NOW).valid


TIMESTAMP = ("magic-hour-event-timestamp", str(NOW))


@pytest.mark.parametrize(
    "given_headers",
    [
        # Identical copies too: which one counts is still up to the framework.
        [("magic-hour-event-signature", GOOD), ("Magic-Hour-Event-Signature", GOOD), TIMESTAMP],
        [("magic-hour-event-signature", GOOD), ("MAGIC-HOUR-EVENT-TIMESTAMP", "1"), TIMESTAMP],
        {
            "Magic-Hour-Event-Signature": "0" * 64,
            "magic-hour-event-signature": GOOD,
            **dict([TIMESTAMP]),
        },
    ],
)
def test_a_repeated_signature_or_timestamp_header_is_ambiguous(
    given_headers: list[tuple[str, str]] | dict[str, str],
) -> None:
    result = verify(BODY, given_headers, "secret-secret-secret", now=NOW)
    assert result.reason is Reason.AMBIGUOUS_HEADERS and not result.valid
    assert "repeats" in result.reason.explanation
    pairs = given_headers.items() if isinstance(given_headers, dict) else given_headers
    assert signing.repeats_signature_header(pairs)


def test_other_repeated_headers_are_not_ambiguous() -> None:
    pairs = [("X-Trace", "1"), ("x-trace", "2"), ("magic-hour-event-signature", GOOD), TIMESTAMP]
    assert not signing.repeats_signature_header(pairs)
    assert verify(BODY, pairs, "secret-secret-secret", now=NOW).reason is Reason.OK
