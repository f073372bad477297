"""Receive webhooks locally: show each one live, verify it, store it, forward it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.options import (
    FormatOption,
    HeaderOption,
    SecretOption,
    extra_headers,
    http_url,
    webhook_secrets,
)
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.output import Format, info

if TYPE_CHECKING:
    from mh_webhook_cli.listen_session import TunnelRequest


def listen(
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes it to your network.")
    ] = ("127.0.0.1"),
    port: Annotated[
        int, typer.Option(help="Port to listen on; 0 picks a free one.", min=0, max=65535)
    ] = 8787,
    path: Annotated[
        str | None,
        typer.Option(help="Accept only this path (404 elsewhere); any path by default."),
    ] = None,
    secret: SecretOption = None,
    tolerance: Annotated[
        int, typer.Option(help="Allowed timestamp age in seconds; 0 turns it off.", min=0)
    ] = 300,
    reject_invalid: Annotated[
        bool, typer.Option(help="Answer 401 to a bad or missing signature, like production.")
    ] = False,
    respond_status: Annotated[
        int,
        typer.Option(help="Status to answer with (simulate a failing handler).", min=100, max=599),
    ] = 200,
    respond_body: Annotated[
        str, typer.Option(help="Body to answer a 2xx with.")
    ] = '{"received":true}',
    respond_delay: Annotated[
        float,
        typer.Option(
            help="Seconds to wait before answering (Magic Hour gives up after 10).", min=0
        ),
    ] = 0.0,
    mirror_status: Annotated[
        bool,
        typer.Option(help="Answer with the status of the first --forward-to handler."),
    ] = False,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            help="Show and forward only these types, e.g. 'video.*,image.completed' "
            "(everything is still stored).",
        ),
    ] = None,
    forward_to: Annotated[
        list[str] | None,
        typer.Option(
            "--forward-to",
            metavar="[TYPES=]URL",
            help="Forward each request's exact bytes and headers to your handler; "
            "'video.*=URL' routes by type (repeatable).",
        ),
    ] = None,
    header: HeaderOption = None,
    forward_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a forward target.", min=0.1)
    ] = 10.0,
    store: Annotated[
        Path | None,
        typer.Option(help="Capture store file; by default $MHW_STORE or one in mhw's data dir."),
    ] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Keep nothing on disk.")] = False,
    max_body: Annotated[
        int, typer.Option(help="Largest body accepted (bytes); then 413.", min=1)
    ] = (1024 * 1024),
    read_timeout: Annotated[
        float, typer.Option(help="Seconds a client may take to send a request; then 408.", min=0.1)
    ] = 10.0,
    expect: Annotated[
        str | None,
        typer.Option(
            help="For CI: exit 0 once these types (comma-separated) have arrived validly signed; "
            "exit 1 at --timeout.",
        ),
    ] = None,
    count: Annotated[int, typer.Option(help="With --expect: how many of each.", min=1)] = 1,
    timeout: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds (exit 1 with --expect).", min=0.1),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(help="Write the URL (JSON) here once accepting, for scripts to wait on."),
    ] = None,
    tunnel: Annotated[
        bool | None,
        typer.Option(
            "--tunnel/--no-tunnel",
            help="A public URL through ngrok; on by default when an ngrok authtoken is known.",
            show_default=False,
        ),
    ] = None,
    ngrok_authtoken: Annotated[
        str | None,
        typer.Option(
            help="ngrok authtoken; else env NGROK_AUTHTOKEN, mhw's config, ngrok's own config.",
            show_default=False,
        ),
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            help="Your ngrok static domain (one is free), so the registered URL survives restarts.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="ngrok region (us, eu, ap, au, sa, jp, in).")
    ] = None,
    ngrok_path: Annotated[
        str | None,
        typer.Option(
            help="An installed ngrok agent to use; else env PYNGROK_NGROK_PATH, else pyngrok's "
            "(downloaded on first use).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print payloads and handler answers.")
    ] = False,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Receive webhooks locally: show each one live, verify, store and forward it."""
    from mh_webhook_cli.http_server import Limits
    from mh_webhook_cli.listener import ForwardRoute, ListenConfig

    secrets = webhook_secrets(secret, required=False)
    if reject_invalid and not secrets:
        raise UsageError("--reject-invalid needs a webhook secret (--secret or config)")
    routes = tuple(ForwardRoute.parse(target) for target in forward_to or [])
    if mirror_status and not routes:
        raise UsageError("--mirror-status needs --forward-to")
    for route in routes:
        http_url(route.url, "--forward-to")
    if path is not None and not path.startswith("/"):
        raise UsageError(f"--path {path!r} must start with /")
    if expect and not secrets:
        raise UsageError("--expect waits for validly signed events: it needs a webhook secret")
    if ready_file is not None and not ready_file.parent.is_dir():
        raise UsageError(f"--ready-file: no directory {ready_file.parent}")
    config = ListenConfig(
        secrets=tuple(secrets),
        tolerance=tolerance,
        path=path,
        respond_status=respond_status,
        respond_body=respond_body.encode(),
        respond_delay=respond_delay,
        reject_invalid=reject_invalid,
        mirror_status=mirror_status,
        event_patterns=_patterns(events),
        forwards=routes,
        forward_headers=tuple(extra_headers(header)),
        forward_timeout=forward_timeout,
    )
    expected = _patterns(expect)
    store_path = None
    if not no_store:
        from mh_webhook_cli.store import default_store_path

        store_path = store or default_store_path()
    from mh_webhook_cli.listen_session import Presenter, Session, run_loop

    plan = _tunnel_plan(tunnel, ngrok_authtoken, domain, region, ngrok_path)
    presenter = Presenter(output_format, verbose)
    limits = Limits(max_body=max_body, read_timeout=read_timeout)
    session = Session(config, host, port, store_path, limits, presenter, expected, count, plan)
    raise typer.Exit(run_loop(session.run(timeout, ready_file)))


def _patterns(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _tunnel_plan(
    asked: bool | None,
    authtoken_flag: str | None,
    domain: str | None,
    region: str | None,
    ngrok_path: str | None,
) -> TunnelRequest | None:
    """Whether to open a tunnel: asked for, refused, or on because a token is known."""
    if asked is False:
        return None
    from mh_webhook_cli.listen_session import TunnelRequest
    from mh_webhook_cli.tunnel import NO_AUTHTOKEN, TunnelError, authtoken_source

    token = authtoken_source(authtoken_flag)
    if token.value is None:
        if asked or domain:
            raise TunnelError(NO_AUTHTOKEN)
        info(
            "local only: for a public URL Magic Hour can reach, set an ngrok authtoken "
            "('mhw config set ngrok_authtoken') and run 'mhw listen --tunnel'"
        )
        return None
    return TunnelRequest(token.value, bool(asked or domain), domain, region, ngrok_path)
