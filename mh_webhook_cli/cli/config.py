"""``mhw config``: read and change mhw's settings file."""

import os
import sys
from typing import Annotated

import typer

from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.options import FormatOption, command_group
from mh_webhook_cli.config_file import config_path, effective, set_value, unset_value
from mh_webhook_cli.core.settings import SETTINGS, mask, setting_named
from mh_webhook_cli.errors import ExitCode
from mh_webhook_cli.files import read_piped_line
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


@app.command("path", epilog=examples("mhw config path"))
def path_command() -> None:
    """Print the config file's path (set MHW_CONFIG to use another)."""
    print(config_path())


@app.command("list", epilog=examples("mhw config list", "mhw config list --format json"))
def list_command(output_format: FormatOption = Format.TEXT) -> None:
    """List every setting: its value (secrets masked) and where it comes from."""
    show_settings([effective(setting) for setting in SETTINGS.values()], output_format)


@app.command(
    "get", epilog=examples("mhw config get webhook_secret", "mhw config get api_base --format json")
)
def get_command(key: KeyArgument, output_format: FormatOption = Format.TEXT) -> None:
    """Print one setting's effective value (secrets masked). Exit 1 if unset."""
    resolved = effective(setting_named(key))
    show_setting(resolved, output_format)
    if resolved.value is None:
        raise typer.Exit(ExitCode.FAILED)


@app.command(
    "set",
    epilog=examples(
        "mhw config set webhook_secret",
        "mhw config set api_base http://127.0.0.1:8788",
        "mhw config set api_key < key.txt",
    ),
)
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
    setting = setting_named(key)
    if value is None or value == "-":
        if sys.stdin.isatty():
            value = typer.prompt(setting.description, hide_input=setting.secret)
        else:
            # Bounded: stdin may be endless. Decoded as argv is, so that bytes that are not
            # UTF-8 reach the same one-line refusal as a bad argument.
            value = read_piped_line(f"the value for {setting.key} on stdin", MAX_PIPED_BYTES)
    value, path = set_value(setting, value, warn=warn)
    shown = mask(value) if setting.secret else value
    info(f"Saved {setting.key} = {shown} in {path}")
    if os.environ.get(setting.env):
        warn(f"{setting.env} is set in the environment and takes precedence over the file")


@app.command("unset", epilog=examples("mhw config unset api_base"))
def unset_command(key: KeyArgument) -> None:
    """Remove a setting from the config file."""
    setting = setting_named(key)
    path = unset_value(setting)
    if path is None:
        info(f"{setting.key} was not set in {config_path()}")
    else:
        info(f"Removed {setting.key} from {path}")
