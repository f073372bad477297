"""Text from a stranger, made safe to show on a terminal.

Everything ``mhw listen`` prints for people may come from whoever reached its port: a path,
a header, an event type. A terminal obeys control characters: a newline in ``type`` forges
a ``✓ signed → 200`` line, ESC sequences move the cursor, erase lines or set the window
title, and bidi overrides (the "Trojan Source" trick) reorder what is shown. :func:`shown`
writes those characters as escapes (``\\x1b``, ``\\n``, ``\\u202e``) and keeps every other
character, accented letters and emoji included, so one value is always one line.

Applied by :mod:`mh_webhook_cli.report.console` to every segment it writes for people, so no
renderer can forget it. JSON output needs none of this: JSON escapes control characters
itself. A backslash is kept as it is, so a sender's literal ``\\x1b`` (four characters)
looks like an escaped ESC: harmless, and ``--format json`` or ``--raw`` tell them apart.
"""

from __future__ import annotations

import re
from functools import cache


@cache
def _unsafe() -> re.Pattern[str]:
    """Compiled on first need (about 1 ms): every command imports this module through
    ``output``, and most print only printable text, which never gets here."""
    return re.compile(
        "["
        "\x00-\x1f\x7f-\x9f"  # C0 (ESC, CR, LF, TAB, BEL…), DEL and C1 (CSI 0x9b, OSC 0x9d…)
        "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings and isolates
        # Invisible format characters (Unicode's Cf but the zero-width joiner that emoji need):
        # "image.completed\u200b" would look like the real type.
        "\u00ad\u070f\u180e\u200b\u200c\u2060-\u2065\u206a-\u206f\ufeff\ufff9-\ufffb"
        "\U000e0001-\U000e007f"
        "\u2028\u2029"  # line and paragraph separators: some terminals and viewers break there
        "\ud800-\udfff"  # lone surrogates: not text, and no encoder writes them
        "]"
    )


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    character = match.group()
    short = _SHORT.get(character)
    if short is not None:
        return short
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_LINE_END = re.compile("\r\n|\r|\n")


def screen_lines(text: str) -> list[str]:
    """``text`` cut where a terminal starts a new line (CR LF, LF, CR), and nowhere else.

    ``str.splitlines`` also cuts at U+2028, U+0085 and the like, which would let a sender
    start a line of its own (a forged ``↳ … 200``); :func:`shown` escapes those instead.
    """
    lines = _LINE_END.split(text)
    if lines[-1] == "":
        lines.pop()  # a final line end ends the last line; it starts no new one
    return lines


def shown(text: str) -> str:
    """``text`` with every character that could steer a terminal written as an escape.

    The common case, printable text, is one C-level scan (``str.isprintable`` is False for
    every character escaped here) and returns ``text`` itself.
    """
    if text.isprintable():
        return text
    return _unsafe().sub(_escaped, text)
