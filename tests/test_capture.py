"""Parsing raw HTTP requests as people capture them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mh_webhook_cli.core.http_text import (
    format_request,
    parse_request,
)
from mh_webhook_cli.core.request import Request
from mh_webhook_cli.errors import CaptureError

BODY = b'{"type":"image.completed","payload":{"id":"clx"}}'


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_content_length_with_either_line_ending(newline: bytes) -> None:
    raw = newline.join(
        [
            b"POST /webhook HTTP/1.1",
            b"Host: example.test",
            b"Magic-Hour-Event-Signature: abc",
            b"Content-Length: %d" % len(BODY),
            b"",
            BODY,
        ]
    )
    request, notes = parse_request(raw)
    assert (request.method, request.target) == ("POST", "/webhook")
    assert request.body == BODY
    assert ("Magic-Hour-Event-Signature", "abc") in request.headers
    assert notes == []


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_chunked_body_is_joined(newline: bytes) -> None:
    chunks = newline.join([b"POST /w HTTP/1.1", b"Transfer-Encoding: chunked", b"", b"a"])
    raw = chunks + newline + BODY[:10] + newline + b"%x" % (len(BODY) - 10) + newline
    raw += BODY[10:] + newline + b"0" + newline + newline
    request, notes = parse_request(raw)
    assert request.body == BODY
    assert "chunked" in notes[0]


def test_trailing_newline_after_content_length_is_ignored_and_noted() -> None:
    raw = b"POST / HTTP/1.1\nContent-Length: %d\n\n%s\n" % (len(BODY), BODY)
    request, notes = parse_request(raw)
    assert request.body == BODY
    assert "trailing newline" in notes[0]


def test_without_content_length_the_rest_is_the_body_exactly() -> None:
    request, _ = parse_request(b"POST / HTTP/1.1\r\n\r\n" + BODY + b"\n")
    assert request.body == BODY + b"\n"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"type":"video.started"}', "not an HTTP request"),
        (b"POST / HTTP/1.1\nContent-Length: 99\n\n{}", "truncated"),
        (b"POST / HTTP/1.1\nContent-Length: ten\n\n{}", "not a number"),
        (b"POST / HTTP/1.1\nno colon here\n\n{}", "malformed header"),
        (b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\nzz\nab\n0\n\n", "bad chunk size"),
        (b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n5\nab", "truncated"),
        (b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n2\nab", "before its last"),
        (b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n2\nabc\n0\n\n", "longer than"),
    ],
)
def test_bad_captures_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        parse_request(raw)


def test_headers_only_capture_has_an_empty_body() -> None:
    request, notes = parse_request(b"POST /x HTTP/1.1\r\nA: b")
    assert request.body == b"" and notes


@given(body=st.binary(), target=st.from_regex(r"/[a-z0-9/._-]{0,20}", fullmatch=True))
def test_format_then_parse_round_trips(body: bytes, target: str) -> None:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    original = Request.of("POST", target, headers, body)
    assert parse_request(format_request(original)) == (original, [])
