"""The one place that decides how results reach the user.

Results go to stdout in one of three forms: rich text on a terminal (colours
off under ``NO_COLOR``), plain text when piped, or JSON with ``--format json``.
Progress, warnings and errors go to stderr, so that ``mhw ... --format json |
jq`` always receives clean JSON.

Renderers describe text as :data:`Line` values, styled segments, so that the
plain form needs no rich at all: importing rich costs more than the rest of a
``mhw verify`` run, and scripts that pipe mhw should not pay for it.

Every segment's text is passed through :func:`~mh_webhook_cli.report.escape.shown` here, so
no renderer can let a sender's control characters reach a terminal: a :data:`Line` is always
one line on screen. Styles are drawn with the escape sequences rich uses for them (learnt once
per style), around the escaped text: never markup, and no rich object per line.

A long-running session (``mhw listen``, ``mhw emulate``) can :func:`redirect` stdout and
stderr to a :class:`Sink` that never blocks (:mod:`mh_webhook_cli.report.writer`), so a
reader that stops reading cannot stop it.

On a terminal a line longer than the window wraps mid-word (or is cropped): a renderer that
knows which of its parts matter gives up the others with :func:`fit`, at the width
:func:`terminal_width` reads when the lines are drawn (so it follows a resize).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from functools import cache
from io import StringIO
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, TextIO, Union

from mh_webhook_cli.report.escape import shown

if TYPE_CHECKING:
    from rich.console import Console

Segment = tuple[str, str]
"""Text and the rich style to show it in on a terminal (``""`` for none)."""
Line = Union[str, Sequence[Segment]]  # noqa: UP007 (a runtime alias: "|" needs 3.10 types)


StreamName = Literal["stdout", "stderr"]


class Sink(Protocol):
    """Where a redirected stream's bytes go instead of a blocking write."""

    def write(self, data: bytes, lines: int) -> bool:
        """Take ``data``, ``lines`` whole lines; False when they were dropped instead."""
        ...


_sinks: dict[StreamName, Sink] = {}
_styled: dict[StreamName, bool] = {}
"""Whether a redirected stream is drawn with styles: decided once, when it is redirected, so
that a session writing thousands of batches asks the terminal (``isatty``) only once."""


def redirect(stream: StreamName, sink: Sink | None) -> None:
    """Send what is written to ``stream`` to ``sink`` from now on (None: back to blocking)."""
    if sink is None:
        _sinks.pop(stream, None)
        _styled.pop(stream, None)
    else:
        _sinks[stream] = sink
        _styled[stream] = is_terminal(getattr(sys, stream))


class Format(str, Enum):
    TEXT = "text"
    JSON = "json"


@cache
def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def is_terminal(stream: IO[str]) -> bool:
    """Whether to draw with rich: a terminal, or colour forced as rich itself allows."""
    return stream.isatty() or bool(
        os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE")
    )


def show(lines: Iterable[Line]) -> None:
    """A result, for people: styled on a terminal, plain when piped."""
    _write(lines, "stdout", stdout)


def _write(lines: Iterable[Line], name: StreamName, console: Callable[[], Console]) -> None:
    styled = _styled.get(name)
    if styled is None:
        styled = is_terminal(getattr(sys, name))
    if styled:
        palette = _palette(console())
        _send(name, "".join(palette.drawn(line) + "\n" for line in lines))
    else:
        _send(name, "".join(shown(_plain(line)) + "\n" for line in lines))


class _Palette:
    """Draws lines as rich draws them on one console (each segment in its style, then a
    reset), without building rich objects for each: a listener draws thousands a second.

    What rich writes before and after a text in a style is learnt once per style, by having
    rich draw a marker character in it: colours as the console supports them, none under
    ``NO_COLOR`` or on a dumb terminal, links as OSC 8.
    """

    MARK = "\ue000"
    """A private-use character: what rich draws before and after it is the style."""
    KEPT = 256
    """Styles remembered at most: a sender's download URL is a style of its own (a link)."""

    def __init__(self, console: Console) -> None:
        from rich.console import Console

        self._drawing = StringIO()
        self._renderer = Console(
            file=self._drawing,
            force_terminal=True,
            color_system=console.color_system,  # type: ignore[arg-type]  # its own names
            no_color=console.no_color,
            highlight=False,
            soft_wrap=True,
        )
        self._codes: dict[str, tuple[str, str]] = {"": ("", "")}

    def drawn(self, line: Line) -> str:
        if isinstance(line, str):
            return shown(line)
        parts: list[str] = []
        for text, style in line:
            if text:
                before, after = self._codes.get(style) or self._learn(style)
                parts += (before, shown(text), after)
        return "".join(parts)

    def _learn(self, style: str) -> tuple[str, str]:
        from rich.text import Text

        if len(self._codes) >= self.KEPT:
            self._codes = {"": ("", "")}
        self._renderer.print(Text(self.MARK, style=style), end="")
        before, _, after = self._drawing.getvalue().partition(self.MARK)
        self._drawing.seek(0)
        self._drawing.truncate()
        self._codes[style] = (before, after)
        return before, after


@cache
def _palette(console: Console) -> _Palette:
    """One per console: a new one when tests build a new console for a changed environment."""
    return _Palette(console)


def _plain(line: Line) -> str:
    return line if isinstance(line, str) else "".join([text for text, _ in line])


def _send(name: StreamName, text: str) -> None:
    """``text`` to the stream: through its sink when redirected, else a blocking write."""
    stream: TextIO = getattr(sys, name)
    sink = _sinks.get(name)
    if sink is None:
        stream.write(text)
        stream.flush()
    else:  # every line ends in the one newline it has (see report.escape)
        sink.write(text.encode(stream.encoding or "utf-8", "replace"), text.count("\n"))


def columns(rows: Sequence[Sequence[Segment]], gap: int = 2) -> list[Line]:
    """Rows of cells as aligned lines (a table without rules, the same in both forms)."""
    widths = [
        max(len(row[i][0]) for row in rows if i < len(row))
        for i in range(max(map(len, rows), default=0))
    ]
    lines: list[Line] = []
    for row in rows:
        aligned: list[Segment] = []
        for i, (text, style) in enumerate(row):
            last = i == len(row) - 1
            aligned.append((text if last else text.ljust(widths[i] + gap), style))
        lines.append(aligned)
    return lines


def terminal_width(name: StreamName = "stdout") -> int | None:
    """The columns of the terminal ``name`` is drawn on, read now; None when it is not drawn
    on one (piped lines keep all they say).

    Read at each batch of lines, not once: a window resized while ``mhw listen`` runs gets
    lines of its new width. ``COLUMNS``, when set, wins, as it does for rich and Python.
    One ``ioctl``: about a microsecond.
    """
    styled = _styled.get(name)
    stream = getattr(sys, name)
    if not (is_terminal(stream) if styled is None else styled):
        return None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (OSError, ValueError):  # forced colours in a pipe: no window to fit
        return None


def cells(text: str) -> int:
    """The columns ``text`` takes on a terminal (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, its middle replaced by ``…`` when it is longer:
    both ends of an id or a URL say the most about it."""
    if cells(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = within(text, width // 2)
    tail = within(text[::-1], width - 1 - cells(head))[::-1]
    return f"{head}…{tail}"


FIELD_SHOWN = 256
"""Characters of one sender's value a line shows at most (a ``type`` may be a megabyte)."""


def bounded(text: str) -> str:
    """``text``, or its start and ``…`` when longer than :data:`FIELD_SHOWN`: what a line
    measures and draws stays small whatever a sender sends."""
    return text if len(text) <= FIELD_SHOWN else text[: FIELD_SHOWN - 1] + "…"


def within(text: str, width: int) -> str:
    """The longest start of ``text`` that takes at most ``width`` columns."""
    if text.isascii():
        return text[:width]
    from rich.cells import get_character_cell_size

    taken = 0
    for end, character in enumerate(text):
        taken += get_character_cell_size(character)
        if taken > width:
            return text[:end]
    return text


Form = tuple[Segment, ...]
"""One way to show a part of a line; ``()`` leaves the part out."""
Step = tuple[int, int]
"""How a line gives up width: ``(part, 0)`` moves the part to its next, narrower form;
``(part, least)`` cuts the middle out of its form's last segment, as far as needed and no
shorter than ``least`` columns."""


def fit(parts: Sequence[Sequence[Form]], steps: Sequence[Step], width: int | None) -> Line:
    """A line of ``parts`` (each one's forms, widest first) in at most ``width`` columns.

    The widest forms while they fit; then ``steps``, in order, until the line fits. What no
    step touches is always shown (the request's ``#N``); when even the last step leaves the
    line too wide, it is drawn too wide. Widths are measured on the text as shown (escaped).
    """
    if width is None:
        return [segment for forms in parts for segment in forms[0]]
    chosen = [_escaped(forms[0]) for forms in parts]
    widths = [sum(cells(text) for text, _ in form) for form in chosen]
    total = sum(widths)
    levels = [0] * len(parts)
    for part, least in steps:
        if total <= width:
            break
        form = chosen[part]
        if not least:
            if levels[part] + 1 >= len(parts[part]):
                continue
            levels[part] += 1
            form = _escaped(parts[part][levels[part]])
        elif form:
            text, style = form[-1]
            have = cells(text)
            goal = max(least, have - (total - width))
            if goal >= have:
                continue
            form = (*form[:-1], (cut(text, goal), style))
        chosen[part] = form
        now = sum(cells(text) for text, _ in form)
        total += now - widths[part]
        widths[part] = now
    return [segment for form in chosen for segment in form]


def _escaped(form: Form) -> Form:
    return tuple((shown(text), style) for text, style in form)


def wrapped(line: Line, width: int | None) -> list[Line]:
    """``line`` in lines of at most ``width`` columns: its last segment (a sentence, a fix to
    follow) folded at spaces under where it starts, never cut, and a word longer than a line
    (a URL) kept whole. For text that must be read in full, where :func:`fit` would cut."""
    *lead, (text, style) = [(line, "")] if isinstance(line, str) else line
    indent = sum(cells(shown(part)) for part, _ in lead)
    text = shown(text)
    if width is None or indent + cells(text) <= width:
        return [line]
    import textwrap

    room = max(width - indent, 20)
    folded = textwrap.wrap(text, room, break_long_words=False, break_on_hyphens=False)
    return [
        [*(lead if index == 0 else [(" " * indent, "")]), (chunk, style)]
        for index, chunk in enumerate(folded or [""])
    ]


def emit_json(data: Any) -> None:
    """A result, for machines: one JSON document per line, flushed at once."""
    emit_json_lines([data])


def emit_json_lines(documents: Iterable[Any]) -> None:
    """Several JSON lines in one write and one flush (a listener under load emits thousands)."""
    from mh_webhook_cli.core.json_text import dumps

    _send("stdout", "".join(dumps(data) + "\n" for data in documents))


def info(message: Line) -> None:
    """Progress or confirmation, on stderr so it never mixes with results."""
    _write([message], "stderr", stderr)


def show_stderr(lines: Iterable[Line]) -> None:
    """Lines for people that are not the result (banners, summaries): on stderr."""
    _write(lines, "stderr", stderr)


def warn(message: str) -> None:
    _write([[("warning: ", "yellow"), (message, "")]], "stderr", stderr)


def error(message: str) -> None:
    """One line, on stderr; the caller sets the exit code."""
    _write([[("error: ", "bold red"), (message, "")]], "stderr", stderr)
