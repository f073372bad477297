"""The ``mhw`` command line: one small module per command, registered here.

Commands only turn options into calls to the library and results into
output; what they do lives in the modules one level up.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mh_webhook_cli import __version__
from mh_webhook_cli.cli import config, events, fixtures, listen, send, sign, verify
from mh_webhook_cli.errors import ExitCode, MhwError
from mh_webhook_cli.output import error

app = typer.Typer(
    name="mhw",
    # Locals in a traceback could show a webhook secret or an API key.
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("listen", help=listen.__doc__)(listen.listen)
app.command("send", help=send.__doc__)(send.send)
app.command("verify", help=verify.__doc__)(verify.verify)
app.command("sign", help=sign.__doc__)(sign.sign)
app.add_typer(fixtures.app, name="fixtures")
app.add_typer(config.app, name="config")
app.add_typer(events.app, name="events")


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
    if context.invoked_subcommand is None:
        # Typer's rich help prints itself and returns ""; plain help is returned.
        help_text = context.get_help()
        if help_text:
            typer.echo(help_text)


def main() -> None:
    """Run ``mhw``: every user error becomes one line on stderr and a documented exit code."""
    try:
        code = app(prog_name="mhw", standalone_mode=False)
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
