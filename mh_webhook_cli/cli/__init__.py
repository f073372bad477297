"""The ``mhw`` command line: one small module per command, registered here.

Commands only turn options into calls to the library and results into
output; what they do lives in the modules one level up.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Annotated

import typer

from mh_webhook_cli import __version__
from mh_webhook_cli.cli import config, events, fixtures, listen, send, sign, verify
from mh_webhook_cli.cli.options import HELP_OPTIONS, show_help_when_bare
from mh_webhook_cli.errors import ExitCode, MhwError
from mh_webhook_cli.output import error

app = typer.Typer(
    name="mhw",
    # Locals in a traceback could show a webhook secret or an API key.
    pretty_exceptions_show_locals=False,
    context_settings=HELP_OPTIONS,
)
app.command("listen", help=listen.__doc__)(listen.listen)
app.command("send", help=send.__doc__)(send.send)
app.command("verify", help=verify.__doc__)(verify.verify)
app.command("sign", help=sign.__doc__)(sign.sign)
app.add_typer(events.app, name="events")
app.add_typer(fixtures.app, name="fixtures")
app.add_typer(config.app, name="config")


def _print_version(value: bool) -> None:
    if value:
        print(f"mhw {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    context: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print mhw's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Sign, send, receive and verify Magic Hour webhooks.

    Exit codes: 0 success, 1 a check failed, 2 bad input or usage.
    """
    show_help_when_bare(context)


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the command being run, when one is named.

    Typer turns every command's signature into click options on each run: for
    all of mhw's commands that takes about 50 ms, more than the rest of a
    ``mhw verify``. Help, completion and unknown commands get the whole app.
    """
    name = next((arg for arg in args if not arg.startswith("-")), None)
    if name is None or os.environ.get("_MHW_COMPLETE"):
        return app
    commands = [info for info in app.registered_commands if info.name == name]
    groups = [info for info in app.registered_groups if info.name == name]
    if not commands and not groups:
        return app
    only = copy.copy(app)
    only.registered_commands = commands
    only.registered_groups = groups
    return only


def main() -> None:
    """Run ``mhw``: every user error becomes one line on stderr and a documented exit code."""
    try:
        code = _app_for(sys.argv[1:])(prog_name="mhw", standalone_mode=False)
    except typer.TyperException as failure:
        # Typer's usage errors carry the context of the command that failed.
        context = getattr(failure, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        error(failure.format_message() + hint)
        code = failure.exit_code
    except typer.Abort:
        error("aborted")
        code = ExitCode.FAILED
    except MhwError as failure:
        error(str(failure))
        code = failure.exit_code
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
