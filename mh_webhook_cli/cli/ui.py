"""``mhw events ui`` and ``mhw listen --ui``: the web inspector, on 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.options import SecretOption, StoreOption, webhook_secrets
from mh_webhook_cli.core.signing import DEFAULT_TOLERANCE_SECONDS
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import info

if TYPE_CHECKING:
    from mh_webhook_cli.receive.inspector import Inspector

DEFAULT_UI_PORT = 8788
"""Next to ``mhw listen``'s 8787."""

UiOption = Annotated[
    bool,
    typer.Option(
        "--ui",
        help="Also serve the web inspector (list, detail, replay) on 127.0.0.1, on its own "
        "port (--ui-port), never the webhook port.",
    ),
]
UiPortOption = Annotated[
    int,
    typer.Option(
        "--ui-port", help="The web inspector's port; 0 picks a free one.", min=0, max=65535
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

    ``store_path`` is the store it reads (None: nothing stored, the live list only);
    ``store_flag`` the ``--store`` given, if any, for the commands it shows.
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


def listen_inspector(
    ui: bool,
    ui_port: int,
    store_path: Path | None,
    store_flag: Path | None,
    secrets: Sequence[str],
    tolerance: int,
    forward_url: str | None,
) -> Inspector | None:
    """For ``mhw listen --ui``: the inspector to start with the listener, or None without --ui.

    ``tolerance`` is the listener's (0: age not checked); ``forward_url`` its first
    ``--forward-to`` URL, where Replay sends a request that was never forwarded.
    """
    if not ui:
        return None
    return inspector(store_path, store_flag, secrets, tolerance, ui_port, forward_url)


async def start(served: Inspector, port: int) -> str:
    """Start ``served``; its URL, or a one-line usage error when the port is taken."""
    try:
        return await served.start()
    except OSError as failure:
        raise UsageError(
            f"--ui-port {port}: {failure.strerror or failure}; --ui-port 0 picks a free one"
        ) from None


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
    raise typer.Exit(run_loop(_serve(served, ui_port)))


async def _serve(served: Inspector, port: int) -> int:
    import asyncio
    import contextlib
    import signal

    url = await start(served, port)
    info(f"mhw inspector: {url}  (Ctrl-C stops)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C interrupts all the same
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await served.close()
    return 0
