"""``mhw config``: read and change mhw's settings file."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from mh_webhook_cli.cli.options import FormatOption, command_group
from mh_webhook_cli.config_file import config_path, effective, load_config, save_config
from mh_webhook_cli.core.settings import SETTINGS, Resolved, Setting, clean_value, mask
from mh_webhook_cli.errors import ExitCode, UsageError
from mh_webhook_cli.report.console import Format, columns, emit_json, info, show, warn

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


def _as_json(resolved: Resolved) -> dict[str, object]:
    return {
        "key": resolved.setting.key,
        "value": resolved.display or None,
        "source": resolved.source.value,
        "env": resolved.setting.env,
        "secret": resolved.setting.secret,
    }


@app.command("path")
def path_command() -> None:
    """Print the config file's path (set MHW_CONFIG to use another)."""
    print(config_path())


@app.command("list")
def list_command(output_format: FormatOption = Format.TEXT) -> None:
    """List every setting: its value (secrets masked) and where it comes from."""
    resolved = [effective(setting) for setting in SETTINGS.values()]
    if output_format is Format.JSON:
        emit_json([_as_json(item) for item in resolved])
        return
    header = [(title, "bold") for title in ("setting", "value", "from", "env variable")]
    rows = [
        [
            (item.setting.key, ""),
            (item.display, "") if item.value else ("unset", "dim"),
            (item.source.value, ""),
            (item.setting.env, "dim"),
        ]
        for item in resolved
    ]
    show(columns([header, *rows]))


@app.command("get")
def get_command(key: KeyArgument, output_format: FormatOption = Format.TEXT) -> None:
    """Print one setting's effective value (secrets masked). Exit 1 if unset."""
    resolved = effective(_setting(key))
    if output_format is Format.JSON:
        emit_json(_as_json(resolved))
    elif resolved.value is not None:
        print(resolved.display)
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
    if not value.strip():
        raise UsageError(f"empty value for {setting.key}; use 'mhw config unset {setting.key}'")
    try:  # the rule every command applies when it reads the value back
        value, trimmed = clean_value(value, f"value given for {setting.key}")
    except ValueError as failure:
        raise UsageError(f"{failure}; nothing saved") from None
    if trimmed:
        warn(trimmed)
    config = load_config()
    config[setting.key] = value
    path = save_config(config)
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
    config = load_config()
    if config.pop(setting.key, None) is None:
        info(f"{setting.key} was not set in {config_path()}")
        return
    path = save_config(config)
    info(f"Removed {setting.key} from {path}")
