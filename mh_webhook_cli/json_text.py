"""Compact JSON text, fast: what ``--format json`` prints and what the store keeps.

Why orjson: ``mhw listen --format json`` writes a line and stores a row for every request,
and ``json.dumps`` took about 20 µs of a listener's ~200 µs per request (measured with
``bench/listen.py``); orjson does the same in about 1.5 µs.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(data: Any) -> str:
    """``data`` as compact JSON (UTF-8 characters as they are, no spaces), on one line."""
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers; a payload from anywhere may hold a larger one.
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
