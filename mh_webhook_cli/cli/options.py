"""Options shared by several commands, defined once, and the calls that read them.

What an option means lives in the library (:mod:`mh_webhook_cli.config_file` resolves
settings, :mod:`mh_webhook_cli.files` reads input, :mod:`mh_webhook_cli.tunnel` plans a
tunnel); the functions here only call it with the CLI's reporter for warnings, so that
every command reads the same option the same way.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.help_text import HELP_NAMES
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format, info, warn

if TYPE_CHECKING:
    from mh_webhook_cli.core.settings import Resolved
    from mh_webhook_cli.magichour.api import MagicHourApi
    from mh_webhook_cli.tunnel import TunnelRequest

HELP_OPTIONS = {"help_option_names": HELP_NAMES}


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

    return [parse_header(value) for value in values or []]


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
        metavar="SECRET",
        help="Webhook secret; else env MAGIC_HOUR_WEBHOOK_SECRET, else config webhook_secret. "
        "Repeat to accept several while rotating.",
        show_default=False,
    ),
]


def webhook_secrets(flag: list[str] | None, *, required: bool = True) -> list[str]:
    """The secrets to sign or verify with (:func:`mh_webhook_cli.config_file.webhook_secrets`)."""
    from mh_webhook_cli.config_file import webhook_secrets as resolve_secrets

    return resolve_secrets(flag, warn=warn, required=required)


SigningSecretOption = Annotated[
    str | None,
    typer.Option(
        "--secret",
        "-s",
        metavar="SECRET",
        help="Webhook secret to sign with; else env MAGIC_HOUR_WEBHOOK_SECRET, else config "
        "webhook_secret.",
        show_default=False,
    ),
]
"""``--secret`` of a command that signs: one secret, as Magic Hour signs with one (the
commands that verify take several, see :data:`SecretOption`)."""


def signing_secret(flag: str | None, *, required: bool = True) -> str | None:
    """The secret to sign with: ``--secret``, else the configured one; None when there is
    none and it is not ``required``."""
    found = webhook_secrets(None if flag is None else [flag], required=required)
    return found[0] if found else None


def patterns(text: str | None, option: str) -> tuple[str, ...]:
    """``'video.*, image.completed'`` as a tuple of event type patterns, each of which
    names or matches at least one event Magic Hour sends: a typo (``vidoe.*``) would
    otherwise filter out, or wait for, nothing at all, silently."""
    found = tuple(part.strip() for part in (text or "").split(",") if part.strip())
    for pattern in found:
        known_event_pattern(pattern, option)
    return found


def known_event_pattern(pattern: str, option: str) -> None:
    """UsageError unless ``pattern`` is an event type or a glob matching one, as ``send`` and
    ``fixtures`` refuse an unknown event."""
    from fnmatch import fnmatchcase

    from mh_webhook_cli.core.catalog import EVENT_TYPES

    if not any(fnmatchcase(event_type, pattern) for event_type in EVENT_TYPES):
        raise UsageError(
            f"{option} {pattern!r} matches no event Magic Hour sends; "
            f"they are: {', '.join(EVENT_TYPES)}"
        )


def http_url(text: str, option: str) -> str:
    """``text`` if it is an http(s) URL (:func:`mh_webhook_cli.core.hosts.http_url`)."""
    from mh_webhook_cli.core.hosts import http_url as valid_url

    return valid_url(text, option)


def read_input(path: str | None, *, what: str) -> bytes:
    """A file's bytes, or stdin's (:func:`mh_webhook_cli.files.read_input`)."""
    from mh_webhook_cli.files import read_input as read

    return read(path, what=what)


MAGIC_HOUR_API = "Magic Hour API"
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help="Magic Hour API key; else env MAGIC_HOUR_API_KEY, config api_key, or the official "
        "Magic Hour CLI's config.",
        rich_help_panel=MAGIC_HOUR_API,
        show_default=False,
    ),
]
ApiBaseOption = Annotated[
    str | None,
    typer.Option(
        "--api-base",
        metavar="URL",
        help="Magic Hour API base URL; else env MAGIC_HOUR_API_BASE, config api_base, else "
        "Magic Hour's (point it at 'mhw emulate' to spend nothing).",
        rich_help_panel=MAGIC_HOUR_API,
        show_default=False,
    ),
]


def api_key(flag: str | None) -> "Resolved":
    """The API key and where it came from (:func:`mh_webhook_cli.config_file.api_key`)."""
    from mh_webhook_cli.config_file import api_key as resolve_key

    return resolve_key(flag, warn=warn)


def api_base(flag: str | None) -> str:
    """The API base URL by flag > env > config, else Magic Hour's."""
    from mh_webhook_cli.config_file import api_base as resolve_base
    from mh_webhook_cli.magichour.api_reference import DEFAULT_API_BASE

    return resolve_base(flag) or DEFAULT_API_BASE


def magic_hour_api(api_key_flag: str | None, api_base_flag: str | None) -> "MagicHourApi":
    """A client for the effective key and base URL; no key is a usage error that says how
    to set one."""
    from mh_webhook_cli.magichour.api import MagicHourApi
    from mh_webhook_cli.magichour.api_reference import KEYS_URL

    key = api_key(api_key_flag)
    if key.value is None:
        raise UsageError(
            "no Magic Hour API key: pass --api-key, set MAGIC_HOUR_API_KEY, or run "
            f"'mhw config set api_key' (get one at {KEYS_URL})"
        )
    return MagicHourApi(key.value, api_base(api_base_flag))


# The listener's options, shared by `mhw listen` and `mhw trigger` (which runs one).


def _bind_host(text: str) -> str:
    from mh_webhook_cli.core.hosts import bind_host
    from mh_webhook_cli.errors import InvalidValue

    try:
        return bind_host(text, "--host")
    except InvalidValue as failure:
        raise typer.BadParameter(str(failure).removeprefix("--host ")) from None


HostOption = Annotated[
    str,
    typer.Option(
        metavar="ADDRESS",
        parser=_bind_host,
        help="Address to bind; 0.0.0.0 exposes it to your network.",
    ),
]
PortOption = Annotated[
    int,
    typer.Option(metavar="PORT", help="Port to listen on; 0 picks a free one.", min=0, max=65535),
]
StoreOption = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH", help="Capture store file; by default $MHW_STORE or one in mhw's data dir."
    ),
]
StoreToReadOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        metavar="PATH",
        help="Capture store to read; by default $MHW_STORE or events.sqlite3 in mhw's data dir.",
        show_default=False,
    ),
]
"""``--store`` of the commands that read what ``mhw listen`` captured (events, verify -e)."""
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
        metavar="TOKEN",
        help="ngrok authtoken; else env NGROK_AUTHTOKEN, mhw's config, ngrok's own config.",
        show_default=False,
    ),
]
DomainOption = Annotated[
    str | None,
    typer.Option(
        metavar="DOMAIN",
        help="Your ngrok static domain (one is free), so the registered URL survives restarts.",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None, typer.Option(metavar="REGION", help="ngrok region (us, eu, ap, au, sa, jp, in).")
]
NgrokPathOption = Annotated[
    str | None,
    typer.Option(
        metavar="PATH",
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
) -> "TunnelRequest | None":
    """The tunnel to open (:func:`mh_webhook_cli.tunnel.plan_tunnel`); says so when none
    opens only because no authtoken is known."""
    from mh_webhook_cli.tunnel import plan_tunnel

    plan = plan_tunnel(asked, authtoken_flag, domain, region, ngrok_path)
    if plan is None and asked is None:
        info(
            "local only: for a public URL Magic Hour can reach, set an ngrok authtoken "
            "('mhw config set ngrok_authtoken'); the tunnel then opens by default"
        )
    return plan
