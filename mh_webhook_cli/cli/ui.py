"""``mhw events ui`` and ``mhw listen --ui``: the web inspector, on 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.options import SecretOption, StoreOption, webhook_secrets
from mh_webhook_cli.core.limits import DEFAULT_TOLERANCE_SECONDS
from mh_webhook_cli.report.console import info

if TYPE_CHECKING:
    from mh_webhook_cli.receive.inspector import Inspector

DEFAULT_UI_PORT = 8789
"""Next to ``mhw listen``'s 8787 and ``mhw emulate``'s 8788: the three run side by side."""

UiOption = Annotated[
    bool,
    typer.Option(
        "--ui",
        help="Also serve the web inspector (list, detail, replay) on 127.0.0.1:--ui-port.",
        rich_help_panel="Output",
    ),
]
UiPortOption = Annotated[
    int,
    typer.Option(
        "--ui-port",
        metavar="PORT",
        help="The web inspector's port; 0 picks a free one.",
        min=0,
        max=65535,
        rich_help_panel="Output",
    ),
]


def inspector(
    store_path: Path | None,
    store_flag: Path | None,
    secrets: Sequence[str],
    tolerance: int,
    port: int,
    forward_url: str | None = None,
) -> Inspector:
    """An inspector, not started yet: ``await it.start()`` on the loop that serves it.

    ``store_path`` is the store it reads (None, as with ``--no-store``: the live list only);
    ``store_flag`` the ``--store`` given, if any, for the commands it shows; ``tolerance``
    the listener's (0: age not checked); ``forward_url`` the first ``--forward-to`` URL,
    where Replay sends a request that was never forwarded.
    """
    from mh_webhook_cli.receive.inspector import Inspector
    from mh_webhook_cli.report.inspector import InspectorViews

    return Inspector(
        InspectorViews(secrets, tolerance, store_flag),
        store_path,
        port=port,
        forward_url=forward_url,
        resign_secret=secrets[0] if secrets else None,
    )


def ui(
    store: StoreOption = None,
    ui_port: UiPortOption = DEFAULT_UI_PORT,
    secret: SecretOption = None,
    tolerance: Annotated[
        int,
        typer.Option(
            help="Allowed timestamp age in seconds, judged as of when each request arrived; "
            "0 turns it off.",
            min=0,
        ),
    ] = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Browse the capture store in a web page on 127.0.0.1: detail, verdicts, replay."""
    from mh_webhook_cli.event_loop import run_loop
    from mh_webhook_cli.receive.store import default_store_path

    secrets = webhook_secrets(secret, required=False)
    path = store.expanduser() if store is not None else default_store_path()
    served = inspector(path, store, secrets, tolerance, ui_port)
    raise typer.Exit(run_loop(_serve(served)))


async def _serve(served: Inspector) -> int:
    import asyncio

    from mh_webhook_cli.event_loop import stop_on_signals

    stop = asyncio.Event()
    stop_on_signals(stop.set)
    url = await served.start()
    info(f"mhw inspector: {url}  (Ctrl-C stops)")
    try:
        await stop.wait()
    finally:
        await served.close()
    return 0
