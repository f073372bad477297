"""``mhw config``: read and change mhw's settings file."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from mh_webhook_cli.cli.options import FormatOption, command_group
from mh_webhook_cli.config_file import config_path, effective, set_value, unset_value
from mh_webhook_cli.core.settings import SETTINGS, Setting, mask
from mh_webhook_cli.errors import ExitCode, UsageError
from mh_webhook_cli.report.config import show_setting, show_settings
from mh_webhook_cli.report.console import Format, info, warn

app = command_group()

MAX_PIPED_BYTES = 4096
"""Longer than any secret, token or URL with its line ending: more on stdin is a mistake."""

KeyArgument = Annotated[
    str,
    typer.Argument(
        help=f"One of: {', '.join(SETTINGS)}.",
        autocompletion=lambda: list(SETTINGS),
        show_default=False,
    ),
]


def _setting(key: str) -> Setting:
    try:
        return SETTINGS[key.replace("-", "_").lower()]
    except KeyError:
        raise UsageError(f"unknown setting {key!r}; known: {', '.join(SETTINGS)}") from None


@app.command("path")
def path_command() -> None:
    """Print the config file's path (set MHW_CONFIG to use another)."""
    print(config_path())


@app.command("list")
def list_command(output_format: FormatOption = Format.TEXT) -> None:
    """List every setting: its value (secrets masked) and where it comes from."""
    show_settings([effective(setting) for setting in SETTINGS.values()], output_format)


@app.command("get")
def get_command(key: KeyArgument, output_format: FormatOption = Format.TEXT) -> None:
    """Print one setting's effective value (secrets masked). Exit 1 if unset."""
    resolved = effective(_setting(key))
    show_setting(resolved, output_format)
    if resolved.value is None:
        raise typer.Exit(ExitCode.FAILED)


@app.command("set")
def set_command(
    key: KeyArgument,
    value: Annotated[
        str | None,
        typer.Argument(
            help="The value; omit it to type it hidden, or pipe it on stdin "
            "(keeps secrets out of shell history).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Save a setting in the config file (mode 0600)."""
    setting = _setting(key)
    if value is None or value == "-":
        if sys.stdin.isatty():
            value = typer.prompt(setting.description, hide_input=setting.secret)
        else:
            value = _piped_line(setting)
    value, path = set_value(setting, value, warn=warn)
    shown = mask(value) if setting.secret else value
    info(f"Saved {setting.key} = {shown} in {path}")
    if os.environ.get(setting.env):
        warn(f"{setting.env} is set in the environment and takes precedence over the file")


def _piped_line(setting: Setting) -> str:
    """The first line on stdin, without its line ending, bounded: stdin may be endless.

    Read as bytes and decoded as argv is (surrogateescape), so that bytes that are not
    UTF-8 reach the same one-line refusal as a bad argument, not a traceback.
    """
    from mh_webhook_cli.files import read_bounded

    what = f"the value for {setting.key} on stdin"
    piped = read_bounded(sys.stdin.buffer, what=what, limit=MAX_PIPED_BYTES)
    return piped.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "surrogateescape")


@app.command("unset")
def unset_command(key: KeyArgument) -> None:
    """Remove a setting from the config file."""
    setting = _setting(key)
    path = unset_value(setting)
    if path is None:
        info(f"{setting.key} was not set in {config_path()}")
    else:
        info(f"Removed {setting.key} from {path}")
