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
one line on screen. Rich draws it as :class:`rich.text.Text`, never as markup.

A long-running session (``mhw listen``, ``mhw emulate``) can :func:`redirect` stdout and
stderr to a :class:`Sink` that never blocks (:mod:`mh_webhook_cli.report.writer`), so a
reader that stops reading cannot stop it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
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


def redirect(stream: StreamName, sink: Sink | None) -> None:
    """Send what is written to ``stream`` to ``sink`` from now on (None: back to blocking)."""
    if sink is None:
        _sinks.pop(stream, None)
    else:
        _sinks[stream] = sink


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


def _write(lines: Iterable[Line], name: StreamName, console: Any) -> None:
    stream: IO[str] = getattr(sys, name)
    sink = _sinks.get(name)
    if not is_terminal(stream):
        _send(name, "".join(shown(_plain(line)) + "\n" for line in lines))
        return
    from rich.text import Text

    texts = [Text(shown(line)) if isinstance(line, str) else _styled(line) for line in lines]
    if sink is None:
        for text in texts:
            console().print(text)
        return
    # Drawn as the terminal's console would (colours, width), into a string for the sink.
    # Not with console().capture(): ending a capture writes (nothing) to the real file, and
    # even an empty write waits on a terminal that has stopped output.
    renderer, drawn = _renderer(name)
    for text in texts:
        renderer.print(text)
    _send(name, drawn.getvalue())
    drawn.seek(0)
    drawn.truncate()


@cache
def _renderer(name: StreamName) -> tuple[Console, StringIO]:
    """A console that draws as ``name``'s does, into a string (see :func:`redirect`)."""
    from rich.console import Console

    real = stdout() if name == "stdout" else stderr()
    drawn = StringIO()
    renderer = Console(
        file=drawn,
        force_terminal=True,
        color_system=real.color_system,  # type: ignore[arg-type]  # its own names, as a str
        no_color=real.no_color,
        width=real.width,
        highlight=False,
        soft_wrap=True,
    )
    return renderer, drawn


def _styled(line: Sequence[Segment]) -> Any:
    from rich.text import Text

    return Text.assemble(*((shown(text), style) for text, style in line))


def _plain(line: Line) -> str:
    return line if isinstance(line, str) else "".join(text for text, _ in line)


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
        cells: list[Segment] = []
        for i, (text, style) in enumerate(row):
            last = i == len(row) - 1
            cells.append((text if last else text.ljust(widths[i] + gap), style))
        lines.append(cells)
    return lines


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
