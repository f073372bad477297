"""Raw HTTP requests as people capture them: parse one, or write one back out.

A capture comes from a proxy log, ``nc -l``, ``mhw events show --raw`` or a
paste into an editor, so the parser is lenient where the wire is strict:
``\\n`` as well as ``\\r\\n``, no ``Host`` header, chunked bodies with either
line ending. It is strict about the body, the bytes a signature covers:
Content-Length is honoured exactly, and anything odd is reported as a note
rather than silently fixed.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from mh_webhook_cli.core.request import Request
from mh_webhook_cli.errors import CaptureError

_REQUEST_LINE = re.compile(rb"([A-Z]+) +(\S+) +HTTP/(\d\.\d)")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(rb"\r?\n")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]+")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")
MAX_HEADERS = 1000
"""Far more header lines than a webhook carries (about a dozen): a capture with more is
not one, and parsing millions of tiny lines would cost memory and time for nothing."""
_UNFINISHED_CHUNKS = "the chunked body ends before its last (zero-size) chunk"


class Capture(NamedTuple):
    """A request read from raw HTTP text: mhw's one :class:`~mh_webhook_cli.core.request.Request`
    type, and what was odd about the text and how it was read (shown to the user)."""

    request: Request
    notes: list[str]


def parse_request(raw: bytes) -> Capture:
    """Parse one raw HTTP/1.x request: request line, headers, blank line, body."""
    head_end = _HEAD_END.search(raw)
    if head_end is None:
        head, rest = raw, b""
    else:
        head, rest = raw[: head_end.start()], raw[head_end.end() :]
    head = head.lstrip(b"\r\n")
    # Counted before anything is split: a million tiny header lines would cost a million objects.
    if head.count(b"\n") > MAX_HEADERS:
        raise CaptureError(
            f"the capture has more than {MAX_HEADERS} header lines: not a webhook request"
        )
    lines = _LINE.split(head)
    request_line = _REQUEST_LINE.fullmatch(lines[0].strip())
    if request_line is None:
        shown = lines[0][:60].decode("utf-8", errors="replace")
        raise CaptureError(
            f"not an HTTP request: the first line should look like "
            f"'POST /webhook HTTP/1.1', not {shown!r}"
        )
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise CaptureError(f"malformed header line {line[:60].decode('latin-1')!r}")
        headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
    if head_end is None:
        notes = ["the capture has no blank line after the headers: read it as an empty body"]
        return _request(request_line, headers, b"", notes)

    by_name = {name.lower(): value for name, value in headers}
    if "chunked" in by_name.get("transfer-encoding", "").lower():
        body, notes = _dechunk(rest)
    elif "content-length" in by_name:
        body, notes = _exact_length(rest, by_name["content-length"])
    else:
        body, notes = rest, []
    return _request(request_line, headers, body, notes)


def format_request(request: Request) -> bytes:
    """The request as raw HTTP/1.1 bytes that :func:`parse_request` reads back unchanged."""
    head = [f"{request.method} {request.target} HTTP/1.1"]
    head += [f"{name}: {value}" for name, value in request.headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body


def _request(
    request_line: re.Match[bytes],
    headers: list[tuple[str, str]],
    body: bytes,
    notes: list[str],
) -> Capture:
    method = request_line.group(1).decode()
    target = request_line.group(2).decode("latin-1")
    return Capture(Request.of(method, target, headers, body), notes)


def _exact_length(rest: bytes, header: str) -> tuple[bytes, list[str]]:
    # ASCII digits, and few: str.isdigit() takes "²", and int() refuses 4,300 digits or more.
    if not _CONTENT_LENGTH.fullmatch(header.strip()):
        raise CaptureError(f"Content-Length {header[:30]!r} is not a number")
    length = int(header)
    if len(rest) < length:
        raise CaptureError(
            f"the capture is truncated: Content-Length is {length} but only "
            f"{len(rest)} bytes of body follow"
        )
    notes = []
    if len(rest) > length:
        extra = rest[length:]
        what = "a trailing newline" if extra.strip(b"\r\n") == b"" else f"{len(extra)} more bytes"
        notes.append(
            f"Content-Length is {length} and {what} followed: used the first {length} bytes, "
            "as a server would"
        )
    return rest[:length], notes


def _dechunk(rest: bytes) -> tuple[bytes, list[str]]:
    # bytes.find, not a regex search: a 16 MiB capture may hold millions of one-byte chunks.
    body = bytearray()  # not a list of pieces: a million one-byte bytes objects cost 40 MB
    position = 0
    while True:
        newline = rest.find(b"\n", position)
        if newline == -1:
            raise CaptureError(_UNFINISHED_CHUNKS)
        size_text = rest[position:newline].split(b";")[0].strip()  # strip: a \r before \n
        # Hex digits only: int() would also take "-4", and a negative size walked back into
        # the capture, forever.
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise CaptureError(f"bad chunk size {size_text[:20]!r} in the chunked body")
        size = int(size_text, 16)
        position = newline + 1
        if size == 0:
            return bytes(body), ["the body was sent chunked: verified the joined chunks"]
        if position + size > len(rest):
            raise CaptureError("the chunked body is truncated")
        body += rest[position : position + size]
        position += size
        if position == len(rest):
            raise CaptureError(_UNFINISHED_CHUNKS)
        if rest.startswith(b"\r\n", position):
            position += 2
        elif rest.startswith(b"\n", position):
            position += 1
        else:
            raise CaptureError("a chunk is longer than its declared size")
