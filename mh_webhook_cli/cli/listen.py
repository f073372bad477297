"""Receive webhooks locally: show each one live, verify it, store it, forward it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.listener_options import ListenerOptions, listener_options
from mh_webhook_cli.cli.options import (
    FormatOption,
    HeaderOption,
    extra_headers,
    http_url,
    known_event_pattern,
    patterns,
)
from mh_webhook_cli.cli.ui import DEFAULT_UI_PORT, UiOption, UiPortOption
from mh_webhook_cli.core.limits import (
    IDLE_TIMEOUT_DEFAULT,
    MAGIC_HOUR_TIMEOUT_SECONDS,
    MAX_BODY_DEFAULT,
    MAX_CONNECTIONS_DEFAULT,
    READ_TIMEOUT_DEFAULT,
)
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format

if TYPE_CHECKING:
    from mh_webhook_cli.receive.activity import Reporter


@listener_options
def listen(
    listener: ListenerOptions,
    path: Annotated[
        str | None,
        typer.Option(help="Accept only this path (404 elsewhere); any path by default."),
    ] = None,
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
        float,
        typer.Option(
            help="Seconds a forward may take in all: connecting, sending, and the "
            "handler's complete answer.",
            min=0.1,
        ),
    ] = MAGIC_HOUR_TIMEOUT_SECONDS,
    max_body: Annotated[
        int, typer.Option(help="Largest body accepted (bytes); then 413.", min=1)
    ] = MAX_BODY_DEFAULT,
    read_timeout: Annotated[
        float, typer.Option(help="Seconds a client may take to send a request; then 408.", min=0.1)
    ] = READ_TIMEOUT_DEFAULT,
    idle_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a connection may stay silent before a request or between two; "
            "then it is closed.",
            min=0.1,
        ),
    ] = IDLE_TIMEOUT_DEFAULT,
    max_connections: Annotated[
        int,
        typer.Option(
            help="Connections open at once; when full, the longest idle one is closed, "
            "else the newcomer gets 503.",
            min=1,
        ),
    ] = MAX_CONNECTIONS_DEFAULT,
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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print payloads and handler answers.")
    ] = False,
    ui: UiOption = False,
    ui_port: UiPortOption = DEFAULT_UI_PORT,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Receive webhooks locally: show each one live, verify, store and forward it."""
    from mh_webhook_cli.receive.http import Limits
    from mh_webhook_cli.receive.listener import ListenConfig
    from mh_webhook_cli.send.forward import ForwardRoute, refuse_forwarding_loop

    secrets = listener.secrets(required=False)
    if reject_invalid and not secrets:
        raise UsageError("--reject-invalid needs a webhook secret (--secret or config)")
    routes = tuple(ForwardRoute.parse(target) for target in forward_to or [])
    if mirror_status and not routes:
        raise UsageError("--mirror-status needs --forward-to")
    for route in routes:
        http_url(route.url, "--forward-to")
        if route.pattern is not None:
            known_event_pattern(route.pattern, "--forward-to")
    refuse_forwarding_loop(routes, listener.host, listener.port)
    if path is not None and not path.startswith("/"):
        raise UsageError(f"--path {path!r} must start with /")
    expected = patterns(expect, "--expect")
    if expected and not secrets:
        raise UsageError("--expect waits for validly signed events: it needs a webhook secret")
    if expected and timeout is None:
        # No wait suits every run (a 'mhw send' takes milliseconds, a video job minutes), and
        # a CI job that hangs until the CI's own limit is the worst way to fail.
        raise UsageError("--expect needs --timeout SECONDS: how long to wait before exit 1")
    if ready_file is not None and not ready_file.parent.is_dir():
        raise UsageError(f"--ready-file: no directory {ready_file.parent}")
    config = ListenConfig(
        secrets=secrets,
        tolerance=tolerance,
        path=path,
        respond_status=respond_status,
        respond_body=respond_body.encode(),
        respond_delay=respond_delay,
        reject_invalid=reject_invalid,
        mirror_status=mirror_status,
        event_patterns=patterns(events, "--events"),
        forwards=routes,
        forward_headers=tuple(extra_headers(header)),
        forward_timeout=forward_timeout,
    )
    store_path = listener.store_path()
    from mh_webhook_cli.event_loop import run_loop
    from mh_webhook_cli.receive.session import Session
    from mh_webhook_cli.report.listen import listen_reporter

    plan = listener.tunnel_request()
    limits = Limits(
        max_body=max_body,
        read_timeout=read_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
    )
    reporter: Reporter = listen_reporter(output_format, verbose)
    web = None
    if ui:
        from mh_webhook_cli.cli.ui import inspector
        from mh_webhook_cli.report.inspector import InspectorFeed

        first_target = routes[0].url if routes else None
        web = inspector(store_path, listener.store, secrets, tolerance, ui_port, first_target)
        reporter = InspectorFeed(reporter, web)
    session = Session(
        config,
        listener.host,
        listener.port,
        store_path,
        limits,
        reporter,
        expected,
        count,
        plan,
        inspector=web,
    )
    raise typer.Exit(run_loop(session.run(timeout, ready_file)))
