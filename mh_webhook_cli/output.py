"""The one place that decides how results reach the user.

Results go to stdout: rich text on a terminal (plain text when piped, since
rich drops styling then, and when ``NO_COLOR`` is set), or JSON with
``--format json``. Progress, warnings and errors go to stderr, so that
``mhw ... --format json | jq`` always receives clean JSON.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


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


def show(renderable: RenderableType) -> None:
    """A result, for people."""
    stdout().print(renderable)


def emit_json(data: Any) -> None:
    """A result, for machines: one JSON document per line, flushed at once."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    """Progress or confirmation, on stderr so it never mixes with results."""
    stderr().print(message)


def warn(message: str) -> None:
    from rich.markup import escape

    stderr().print(f"[yellow]warning:[/] {escape(message)}")


def error(message: str) -> None:
    """One line, on stderr; the caller sets the exit code."""
    from rich.markup import escape

    stderr().print(f"[bold red]error:[/] {escape(message)}")
