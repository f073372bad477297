"""Options and input handling shared by several commands, defined once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format, info, warn

if TYPE_CHECKING:
    from mh_webhook_cli.core.settings import Resolved
    from mh_webhook_cli.magichour.api import MagicHourApi
    from mh_webhook_cli.receive.session import TunnelRequest

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
    from mh_webhook_cli.send.delivery import parse_header

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
    """The secrets to sign or verify with, by flag > env > config, each made usable.

    Every command that signs or verifies gets its secrets here, so one rule holds for all
    (:func:`mh_webhook_cli.core.settings.clean_value`): not UTF-8 is a usage error naming where
    the secret came from, surrounding whitespace is trimmed with a warning. None found is a
    usage error when ``required``, else an empty list.
    """
    from mh_webhook_cli.core.settings import WEBHOOK_SECRET

    if flag:
        return [_usable(value, f"webhook secret from {WEBHOOK_SECRET.flag}") for value in flag]
    from mh_webhook_cli.config_file import effective
    from mh_webhook_cli.magichour.doctor import origin

    resolved = effective(WEBHOOK_SECRET)
    if resolved.value is None:
        if not required:
            return []
        raise UsageError(
            "no webhook secret: pass --secret, set MAGIC_HOUR_WEBHOOK_SECRET, "
            "or run 'mhw config set webhook_secret'"
        )
    return [_usable(resolved.value, f"webhook secret from {origin(resolved)}")]


def _usable(value: str, what: str) -> str:
    """``value`` by :func:`~mh_webhook_cli.core.settings.clean_value`'s rule: a one-line usage
    error naming ``what`` (the setting and where it came from), or trimmed with a warning."""
    from mh_webhook_cli.core.settings import clean_value

    try:
        cleaned, warning = clean_value(value, what)
    except ValueError as failure:
        raise UsageError(str(failure)) from None
    if warning:
        warn(warning)
    return cleaned


def patterns(text: str | None) -> tuple[str, ...]:
    """``'video.*, image.completed'`` as a tuple of event type patterns."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


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
    """The exact bytes of ``path``, or of stdin for ``-`` or when stdin is piped.

    Every command that reads a body, a capture or an event reads it here, bounded
    (see :mod:`mh_webhook_cli.files`): a device or an endless stream is one line.
    """
    from mh_webhook_cli.files import read_bounded, read_file

    if path is None or path == "-":
        if path is None and sys.stdin.isatty():
            raise UsageError(f"no {what}: give a file, or pipe it on stdin")
        data = read_bounded(sys.stdin.buffer, what=f"the {what} on stdin")
        if path is None and not data:
            raise UsageError(f"no {what}: stdin was empty")
        return data
    try:
        return read_file(Path(path).expanduser(), f"{what} {path}")
    except FileNotFoundError as failure:
        raise UsageError(f"cannot read {what} {path}: {failure.strerror}") from None


ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help="Magic Hour API key; else env MAGIC_HOUR_API_KEY, config api_key, or the official "
        "Magic Hour CLI's config.",
        show_default=False,
    ),
]
ApiBaseOption = Annotated[
    str | None,
    typer.Option(
        "--api-base",
        metavar="URL",
        help="Magic Hour API base URL; else env MAGIC_HOUR_API_BASE, config api_base, else "
        "https://api.magichour.ai (point it at 'mhw emulate' to spend nothing).",
        show_default=False,
    ),
]


def api_key(flag: str | None) -> Resolved:
    """The API key by flag > env > mhw config > Magic Hour CLI config, and where it came from.

    Unset is not an error here (``mhw doctor`` reports it); :func:`magic_hour_api` requires it.
    """
    from mh_webhook_cli.config_file import effective
    from mh_webhook_cli.core.settings import API_KEY, Resolved
    from mh_webhook_cli.magichour.doctor import origin

    if flag is not None and not flag.strip():
        raise UsageError("--api-key is empty")
    resolved = effective(API_KEY, flag)
    if resolved.value is None:
        return resolved
    # Sent in a header: bytes that are not UTF-8 would end in an encoding traceback there.
    key = _usable(resolved.value, f"API key from {origin(resolved)}")
    return Resolved(API_KEY, key, resolved.source)


def api_base(flag: str | None) -> str:
    """The API base URL by flag > env > config, else Magic Hour's; a usage error if malformed."""
    from mh_webhook_cli.config_file import effective
    from mh_webhook_cli.core.settings import API_BASE, Source
    from mh_webhook_cli.magichour.api import DEFAULT_API_BASE

    resolved = effective(API_BASE, flag)
    if resolved.value is None:
        return DEFAULT_API_BASE
    origin = {Source.FLAG: "--api-base", Source.ENV: API_BASE.env}
    return http_url(resolved.value, origin.get(resolved.source, "config api_base"))


def magic_hour_api(api_key_flag: str | None, api_base_flag: str | None) -> MagicHourApi:
    """A client for the effective key and base URL; no key is a usage error that says how
    to set one."""
    from mh_webhook_cli.magichour.api import KEYS_URL, MagicHourApi

    key = api_key(api_key_flag)
    if key.value is None:
        raise UsageError(
            "no Magic Hour API key: pass --api-key, set MAGIC_HOUR_API_KEY, or run "
            f"'mhw config set api_key' (get one at {KEYS_URL})"
        )
    return MagicHourApi(key.value, api_base(api_base_flag))


# The listener's options, shared by `mhw listen` and `mhw trigger` (which runs one).

HostOption = Annotated[
    str, typer.Option(help="Address to bind; 0.0.0.0 exposes it to your network.")
]
PortOption = Annotated[
    int, typer.Option(help="Port to listen on; 0 picks a free one.", min=0, max=65535)
]
StoreOption = Annotated[
    Path | None,
    typer.Option(help="Capture store file; by default $MHW_STORE or one in mhw's data dir."),
]
NoStoreOption = Annotated[bool, typer.Option("--no-store", help="Keep nothing on disk.")]
TunnelOption = Annotated[
    bool | None,
    typer.Option(
        "--tunnel/--no-tunnel",
        help="A public URL through ngrok; on by default when an ngrok authtoken is known.",
        show_default=False,
    ),
]
NgrokAuthtokenOption = Annotated[
    str | None,
    typer.Option(
        help="ngrok authtoken; else env NGROK_AUTHTOKEN, mhw's config, ngrok's own config.",
        show_default=False,
    ),
]
DomainOption = Annotated[
    str | None,
    typer.Option(
        help="Your ngrok static domain (one is free), so the registered URL survives restarts.",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None, typer.Option(help="ngrok region (us, eu, ap, au, sa, jp, in).")
]
NgrokPathOption = Annotated[
    str | None,
    typer.Option(
        help="An installed ngrok agent to use; else env PYNGROK_NGROK_PATH, else pyngrok's "
        "(downloaded on first use).",
        show_default=False,
    ),
]


def capture_store(flag: Path | None, no_store: bool) -> Path | None:
    """The capture store to write: ``--store``, else the default; None with ``--no-store``."""
    if no_store:
        return None
    from mh_webhook_cli.receive.store import default_store_path

    return flag or default_store_path()


def tunnel_plan(
    asked: bool | None,
    authtoken_flag: str | None,
    domain: str | None,
    region: str | None,
    ngrok_path: str | None,
) -> TunnelRequest | None:
    """Whether to open a tunnel: asked for, refused, or on because a token is known."""
    if asked is False:
        return None
    from mh_webhook_cli.receive.session import TunnelRequest
    from mh_webhook_cli.tunnel import NO_AUTHTOKEN, TunnelError, authtoken_source

    token = authtoken_source(authtoken_flag)
    if token.value is None:
        if asked or domain:
            raise TunnelError(NO_AUTHTOKEN)
        info(
            "local only: for a public URL Magic Hour can reach, set an ngrok authtoken "
            "('mhw config set ngrok_authtoken') and pass --tunnel"
        )
        return None
    return TunnelRequest(token.value, bool(asked or domain), domain, region, ngrok_path)
