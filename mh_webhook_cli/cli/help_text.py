"""What ``mhw … --help`` shows beside each option: a placeholder for its value, or nothing.

Typer 0.29 labels an option's value with its Python type: ``<bool>`` beside a flag, which
takes no value at all, ``<list[str]>`` beside a repeatable ``--secret``, ``<float range>``.
:func:`name_the_values` walks the click commands typer built and gives every option that
declares no metavar one that reads as a command line: nothing for a flag, ``text|json``
for a choice, ``N`` for a number, ``TEXT`` for text, ``PATH`` for a path; an argument is
named in capitals (``EVENT``), as usage lines write them.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, get_args

import typer
from typer.core import TyperArgument, TyperOption

HELP_NAMES = ["-h", "--help"]
"""The help option of every mhw command (its context settings, in :mod:`.options`)."""
_BY_TYPE: dict[Any, str] = {int: "N", float: "N", str: "TEXT", Path: "PATH"}


def name_the_values(command: Any) -> None:
    """Give ``command``'s options and arguments, and its subcommands', their placeholders."""
    if command.help:
        command.help = _reflowed(command.help)
    for param in command.params:
        if param.metavar is not None:
            continue
        if isinstance(param, TyperArgument):
            param.metavar = (param.name or "value").upper()
        elif isinstance(param, TyperOption):
            param.metavar = _placeholder(param)
    # Click makes the help option when first asked, and keeps that one: asked here, with
    # the names every mhw command takes, it is the one the help lists.
    help_option = command.get_help_option(typer.Context(command, help_option_names=HELP_NAMES))
    if help_option is not None:
        help_option.metavar = ""
    for subcommand in getattr(command, "commands", {}).values():
        name_the_values(subcommand)


def _reflowed(text: str) -> str:
    """``text`` with each paragraph on one line: rich keeps the line breaks of a docstring's
    later paragraphs, which then break again at the terminal's width, mid-sentence."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def _placeholder(option: TyperOption) -> str:
    if option.is_flag or option.count:
        return ""  # the flag alone says it
    described = option.type_descriptor
    if described.is_choice:
        return "|".join(str(getattr(choice, "value", choice)) for choice in described.choices or ())
    annotation = described.annotation
    if described.is_list:
        (annotation,) = get_args(annotation)
    return _BY_TYPE.get(annotation, "VALUE")


def command_of(app: typer.Typer) -> Any:
    """The click command typer builds for ``app``, its placeholders named."""
    command = typer.main.get_command(app)
    name_the_values(command)
    return command


def examples(*commands: str) -> str:
    """A command's help epilog: a few command lines to start from, one per line."""
    return "Examples:\n" + "\n".join(f"$ {command}" for command in commands)
