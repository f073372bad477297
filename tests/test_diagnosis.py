"""Each common mistake, made for real, must be named by the diagnosis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from mh_webhook_cli import Reason, verify

SECRET = "mhw_live_0123456789abcdef0123456789abcdef"
NOW = 1730742038
EVENT = {
    "type": "video.completed",
    "payload": {
        "id": "clx7uu86w0a5qp55yxz315r6r",
        "name": "Café ☕ trailer",
        "status": "complete",
        "downloads": [{"url": "https://videos.magichour.ai/x/output.mp4"}],
    },
}
COMPACT = json.dumps(EVENT, separators=(",", ":"), ensure_ascii=False).encode()


def mac(secret: str, message: bytes) -> bytes:
    """The recipe written out again here, independent of the code under test."""
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def codes(
    received_body: bytes,
    signature: str,
    *,
    secret: str = SECRET,
    timestamp: str = str(NOW),
    now: int = NOW,
) -> tuple[Reason, list[str]]:
    result = verify(
        received_body,
        {"magic-hour-event-signature": signature, "magic-hour-event-timestamp": timestamp},
        secret,
        now=now,
    )
    assert not result.valid
    return result.reason, [hint.code for hint in result.hints]


def signed(body: bytes, secret: str = SECRET, prefix: bytes = f"{NOW}.".encode()) -> str:
    return mac(secret, prefix + body).hex()


@pytest.mark.parametrize(
    ("received", "expected_code"),
    [
        (json.dumps(EVENT, indent=2, ensure_ascii=False).encode(), "body_pretty_printed"),
        (json.dumps(EVENT, ensure_ascii=False).encode(), "body_python_separators"),
        (json.dumps(EVENT, separators=(",", ":")).encode(), "body_ascii_escaped"),
        (COMPACT + b"\n", "body_newline_added"),
    ],
)
def test_body_changed_after_signing(received: bytes, expected_code: str) -> None:
    reason, found = codes(received, signed(COMPACT))
    assert reason is Reason.SIGNATURE_MISMATCH
    assert expected_code in found
    assert "wrong_secret" not in found


def test_signer_sorted_the_keys() -> None:
    sorted_keys = json.dumps(EVENT, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    _reason, found = codes(COMPACT, signed(sorted_keys.encode()))
    assert found == ["body_keys_reordered"]


def test_line_endings_converted_to_crlf() -> None:
    """A pretty-printed body signed with LF, saved by a Windows editor with CRLF."""
    pretty = json.dumps(EVENT, indent=2, ensure_ascii=False).encode()
    _reason, found = codes(pretty.replace(b"\n", b"\r\n"), signed(pretty))
    assert found == ["body_crlf"]


def test_magic_hours_own_test_script_mistake() -> None:
    """Signs compact JSON, then sends requests.post(json=event): default separators, escaped."""
    sent_by_requests = json.dumps(EVENT).encode()
    reason, found = codes(sent_by_requests, signed(COMPACT))
    assert reason is Reason.SIGNATURE_MISMATCH
    assert {"body_python_separators", "body_ascii_escaped"} <= set(found)


def test_a_trailing_newline_is_not_called_pretty_printing() -> None:
    """Only a newline was added: the one hint says so, nothing about pretty-printed JSON."""
    _reason, found = codes(COMPACT + b"\n", signed(COMPACT))
    assert found == ["body_newline_added"]


def test_a_reserialized_body_that_also_gained_a_newline_gets_both_hints() -> None:
    _reason, found = codes(json.dumps(EVENT).encode() + b"\n", signed(COMPACT))
    assert {"body_python_separators", "body_ascii_escaped", "body_newline_added"} <= set(found)
    assert "body_pretty_printed" not in found


def test_newline_stripped_after_signing() -> None:
    """curl -d @file drops the file's final newline that the signer included."""
    _reason, found = codes(COMPACT, signed(COMPACT + b"\n"))
    assert "body_newline_stripped" in found


def test_body_signed_with_object_envelope_from_the_spec_prose() -> None:
    wrapped = json.dumps(
        {"type": EVENT["type"], "object": EVENT["payload"]},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    _reason, found = codes(COMPACT, signed(wrapped))
    assert found == ["body_object_envelope"]


def test_signed_without_timestamp_prefix() -> None:
    _reason, found = codes(COMPACT, signed(COMPACT, prefix=b""))
    assert found == ["signed_without_timestamp"]


def test_signed_with_millisecond_timestamp() -> None:
    _reason, found = codes(COMPACT, signed(COMPACT, prefix=f"{NOW * 1000 + 417}.".encode()))
    assert found == ["millisecond_timestamp"]


def test_millisecond_timestamp_header() -> None:
    header = str(NOW * 1000 + 5)
    reason, found = codes(COMPACT, signed(COMPACT, prefix=f"{header}.".encode()), timestamp=header)
    assert reason is Reason.TIMESTAMP_IN_FUTURE
    assert found == ["millisecond_timestamp"]


@pytest.mark.parametrize(
    ("verifier_secret", "expected_code"),
    [
        (SECRET + "\n", "secret_whitespace"),
        (f' "{SECRET}" ', "secret_quotes"),
        (f"'{SECRET}'", "secret_quotes"),
    ],
)
def test_secret_stored_with_whitespace_or_quotes(verifier_secret: str, expected_code: str) -> None:
    _reason, found = codes(COMPACT, signed(COMPACT), secret=verifier_secret)
    assert expected_code in found


@pytest.mark.parametrize(
    ("signer_secret", "expected_code"),
    [(SECRET + "\n", "secret_whitespace"), (f'"{SECRET}"', "secret_quotes")],
)
def test_signer_used_secret_with_whitespace_or_quotes(
    signer_secret: str, expected_code: str
) -> None:
    _reason, found = codes(COMPACT, signed(COMPACT, secret=signer_secret))
    assert found == [expected_code]


def test_uppercase_hex() -> None:
    reason, found = codes(COMPACT, signed(COMPACT).upper())
    assert reason is Reason.SIGNATURE_MISMATCH
    assert found == ["uppercase_hex"]


def test_sha256_prefix() -> None:
    reason, found = codes(COMPACT, "sha256=" + signed(COMPACT))
    assert reason is Reason.MALFORMED_SIGNATURE
    assert found == ["sha256_prefix"]


def test_base64_instead_of_hex() -> None:
    digest = mac(SECRET, f"{NOW}.".encode() + COMPACT)
    reason, found = codes(COMPACT, base64.b64encode(digest).decode())
    assert reason is Reason.MALFORMED_SIGNATURE
    assert found == ["base64_signature"]


def test_truncated_signature_as_in_the_docs() -> None:
    _reason, found = codes(COMPACT, "3e771b50c")
    assert found == ["truncated_signature"]


def test_unreadable_signature() -> None:
    _reason, found = codes(COMPACT, "not a signature at all!")
    assert found == ["unreadable_signature"]


def test_two_mistakes_at_once() -> None:
    """Pretty-printed body *and* a secret with a trailing newline on the signer's side."""
    _reason, found = codes(
        json.dumps(EVENT, indent=2, ensure_ascii=False).encode(),
        signed(COMPACT, secret=SECRET + "\n"),
    )
    assert {"body_pretty_printed", "secret_whitespace"} <= set(found)


def test_wrong_secret_when_nothing_explains_it() -> None:
    reason, found = codes(COMPACT, signed(COMPACT, secret="mhw_live_" + "z" * 32))
    assert reason is Reason.SIGNATURE_MISMATCH
    assert found == ["wrong_secret"]


def test_wrong_secret_names_all_secrets_when_rotating() -> None:
    result = verify(
        COMPACT,
        {
            "magic-hour-event-signature": signed(COMPACT, "other-secret-xx"),
            "magic-hour-event-timestamp": str(NOW),
        },
        [SECRET, SECRET + "2"],
        now=NOW,
    )
    assert [hint.code for hint in result.hints] == ["wrong_secret"]
    assert "none of the 2 secrets" in result.hints[0].message


def test_stale_but_genuine() -> None:
    reason, found = codes(COMPACT, signed(COMPACT), now=NOW + 3600)
    assert reason is Reason.TIMESTAMP_TOO_OLD
    assert found == ["genuine_but_stale"]


def test_future_timestamp_points_at_the_clock() -> None:
    reason, found = codes(COMPACT, signed(COMPACT), now=NOW - 3600)
    assert reason is Reason.TIMESTAMP_IN_FUTURE
    assert found == ["clock_skew"]


def test_diagnosis_can_be_turned_off() -> None:
    result = verify(
        COMPACT,
        {"magic-hour-event-signature": "0" * 64, "magic-hour-event-timestamp": str(NOW)},
        SECRET,
        now=NOW,
        diagnose=False,
    )
    assert result.reason is Reason.SIGNATURE_MISMATCH and result.hints == ()


def test_non_json_body_is_still_diagnosed() -> None:
    body = b"\xff\xfe not json"
    _reason, found = codes(body + b"\n", signed(body))
    assert found == ["body_newline_added"]
