"""Options and input handling shared by several commands, defined once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.output import Format

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


def show_help_when_bare(context: typer.Context) -> None:
    """Run without a subcommand, a command group shows its help rather than an error."""
    if context.invoked_subcommand is None:
        # Typer's rich help prints itself and returns ""; plain help is returned.
        help_text = context.get_help()
        if help_text:
            typer.echo(help_text)


def command_group() -> typer.Typer:
    """A group of subcommands (``mhw config …``) with the conventions of every mhw command.

    Its summary is given where it is registered, in ``mh_webhook_cli.cli``.
    """
    return typer.Typer(
        context_settings=HELP_OPTIONS,
        invoke_without_command=True,
        callback=show_help_when_bare,
    )


HeaderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        "-H",
        metavar="'NAME: VALUE'",
        help="Add a header to each request sent (repeatable).",
        show_default=False,
    ),
]
AssignmentsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Change a field, e.g. payload.status=error or payload.downloads=[] (repeatable).",
        show_default=False,
    ),
]


def extra_headers(values: list[str] | None) -> list[tuple[str, str]]:
    """``-H 'Name: value'`` options as pairs; a usage error names a malformed one."""
    from mh_webhook_cli.sender import parse_header

    try:
        return [parse_header(value) for value in values or []]
    except ValueError as failure:
        raise UsageError(str(failure)) from None


FormatOption = Annotated[
    Format,
    typer.Option(
        "--format", "-f", help="text for people, json for machines.", case_sensitive=False
    ),
]
SecretOption = Annotated[
    list[str] | None,
    typer.Option(
        "--secret",
        "-s",
        help="Webhook secret; else env MAGIC_HOUR_WEBHOOK_SECRET, else config webhook_secret. "
        "Repeat to accept several while rotating.",
        show_default=False,
    ),
]


def webhook_secrets(flag: list[str] | None, *, required: bool = True) -> list[str]:
    """The secrets to sign or verify with, by flag > env > config.

    None found is a usage error when ``required``, else an empty list.
    """
    if flag:
        if not all(secret.strip() for secret in flag):
            raise UsageError("--secret is empty")
        return flag
    from mh_webhook_cli.config_file import effective
    from mh_webhook_cli.settings import WEBHOOK_SECRET

    resolved = effective(WEBHOOK_SECRET)
    if resolved.value is None:
        if not required:
            return []
        raise UsageError(
            "no webhook secret: pass --secret, set MAGIC_HOUR_WEBHOOK_SECRET, "
            "or run 'mhw config set webhook_secret'"
        )
    return [resolved.value]


def http_url(text: str, option: str) -> str:
    """``text`` if it is an http(s) URL with a host and a valid port, else a usage error."""
    import httpx

    try:
        url = httpx.URL(text)
        port_ok = url.port is None or 0 < url.port < 65536
        valid = url.scheme in ("http", "https") and bool(url.host) and port_ok
    except (httpx.InvalidURL, ValueError):
        valid = False
    if not valid:
        raise UsageError(
            f"{option} {text!r} is not an http(s) URL like http://127.0.0.1:8000/webhook"
        )
    return text


def read_input(path: str | None, *, what: str) -> bytes:
    """The exact bytes of ``path``, or of stdin for ``-`` or when stdin is piped."""
    if path is None or path == "-":
        if path is None and sys.stdin.isatty():
            raise UsageError(f"no {what}: give a file, or pipe it on stdin")
        data = sys.stdin.buffer.read()
        if path is None and not data:
            raise UsageError(f"no {what}: stdin was empty")
        return data
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as failure:
        raise UsageError(f"cannot read {what} {path}: {failure.strerror}") from None
