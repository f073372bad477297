"""JSON fast: the compact text that ``--format json`` prints and the store keeps, and the
parse of every body a listener receives.

Why orjson: ``mhw listen --format json`` parses a body, writes a line and stores a row
for every request. ``json.dumps`` took about 20 µs of a listener's ~200 µs per request
(measured with ``bench/listen.py``), orjson does the same in about 1.5 µs; it parses a
webhook in 2.6 µs where the stdlib takes 10.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def escape_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\ud800``), so it has UTF-8.

    ``{"type":"\\ud800"}`` is valid JSON, and Python reads it as a string holding a lone
    surrogate (so does a command line or environment with undecodable bytes, through
    ``surrogateescape``), which no UTF-8 can encode: SQLite cannot take it as TEXT, nor a
    terminal as output. The escape shows what was sent; U+FFFD would hide it. Inside a
    JSON string it is also the valid JSON escape, which reads back as the same string.
    """
    if text.isascii():  # O(1) in CPython: almost every text ends here
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dumps(data: Any) -> str:
    """``data`` as compact JSON (UTF-8 characters as they are, no spaces), on one line.

    Always encodable as UTF-8: a lone surrogate (``json.loads`` reads ``"\\ud800"`` as one)
    is written as its JSON escape, which reads back as the same string. So are the
    characters that JSON lets through but a terminal or a line reader obeys: C1 controls
    and DEL (CSI 0x9b, OSC 0x9d), line and paragraph separators (``str.splitlines`` cuts there) and
    bidi overrides. ``--format json`` on a terminal then steers nothing, and a JSON line is
    one line for every reader, with the same value.
    """
    try:
        text = orjson.dumps(data).decode()
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers and at surrogates; a payload from anywhere may hold
        # either. Surrogates occur only inside JSON strings, where their escape is valid.
        text = escape_lone_surrogates(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    if text.isascii() and "\x7f" not in text:  # O(1) and a memchr: almost every line ends here
        return text
    # Outside strings JSON is ASCII, so these are inside one, where an escape is valid.
    return _OBEYED.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


_OBEYED = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


_SHAPE = bytes(
    0x30 if 0x30 <= byte <= 0x39 else 0x5B if byte in b"[{" else 0x20 for byte in range(256)
)
"""A body's shape, for the checks below in one pass: every digit a ``0``, every opening
bracket a ``[``, everything else a space."""
_NINETEEN_DIGITS = b"0" * 19
_MAX_BRACKETS = 512


def loads_if_exact(data: bytes) -> Any | None:
    """The document in ``data`` when orjson reads it exactly as ``json.loads`` would, else None.

    None means "ask the stdlib": for invalid JSON (whose error the stdlib words better), for
    the document ``null``, for any run of 19 digits, since orjson turns integers beyond 64
    bits into floats, and for 512 brackets or more, since orjson reads nesting 1024 deep
    where the stdlib (and every recursive walk of the document after it) stops near 1000.
    Everything else orjson accepts, the stdlib reads the same.
    """
    shape = data.translate(_SHAPE)
    if shape.count(b"[") >= _MAX_BRACKETS or _NINETEEN_DIGITS in shape:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
