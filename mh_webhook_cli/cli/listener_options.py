"""The options of a listener, declared once for every command that runs one.

``mhw listen`` and ``mhw trigger`` (which starts a listener of its own) take the same ten:
where to bind, the webhook secret, the capture store and the ngrok tunnel. A command
decorated with :func:`listener_options` declares one parameter, ``listener:
ListenerOptions``, and typer sees the ten options in its place.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

from mh_webhook_cli.cli.options import (
    DomainOption,
    HostOption,
    NgrokAuthtokenOption,
    NgrokPathOption,
    NoStoreOption,
    PortOption,
    RegionOption,
    SecretOption,
    StoreOption,
    TunnelOption,
    capture_store,
    tunnel_plan,
    webhook_secrets,
)

if TYPE_CHECKING:
    from mh_webhook_cli.tunnel import TunnelRequest


@dataclass(frozen=True)
class ListenerOptions:
    """The listener's options as given on the command line."""

    host: HostOption = "127.0.0.1"
    port: PortOption = 8787
    secret: SecretOption = None
    store: StoreOption = None
    no_store: NoStoreOption = False
    tunnel: TunnelOption = None
    ngrok_authtoken: NgrokAuthtokenOption = None
    domain: DomainOption = None
    region: RegionOption = None
    ngrok_path: NgrokPathOption = None

    def secrets(self, *, required: bool) -> tuple[str, ...]:
        """``--secret``, else the configured secret (see :func:`webhook_secrets`)."""
        return tuple(webhook_secrets(self.secret, required=required))

    def store_path(self) -> Path | None:
        """The capture store to write; None with ``--no-store``."""
        return capture_store(self.store, self.no_store)

    def tunnel_request(self) -> TunnelRequest | None:
        """The tunnel to open, if any (see :func:`tunnel_plan`)."""
        return tunnel_plan(
            self.tunnel, self.ngrok_authtoken, self.domain, self.region, self.ngrok_path
        )


LISTENER = "Listener"
TUNNEL = "Tunnel (ngrok)"
PANELS = {
    "host": LISTENER,
    "port": LISTENER,
    "secret": LISTENER,
    "store": LISTENER,
    "no_store": LISTENER,
    "tunnel": TUNNEL,
    "ngrok_authtoken": TUNNEL,
    "domain": TUNNEL,
    "region": TUNNEL,
    "ngrok_path": TUNNEL,
}
"""The help panel of each listener option: in a command's help they come in two groups."""


def _in_panel(annotation: Any, panel: str) -> Any:
    """``Annotated[T, typer.Option(...)]`` with the option shown in ``panel``: a copy, as
    the same option (``--secret``) goes in no panel in commands that run no listener."""
    base, info = get_args(annotation)
    placed = copy.copy(info)
    placed.rich_help_panel = panel
    return Annotated[base, placed]


def listener_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command``'s ``listener: ListenerOptions`` parameter to typer as the ten options.

    The options take the place of that parameter in ``--help``. Every parameter becomes
    keyword-only, which changes nothing for typer: click passes them all by name.
    """
    signature = inspect.signature(command, eval_str=True)
    hints = inspect.get_annotations(ListenerOptions, eval_str=True)
    shared = [
        inspect.Parameter(
            option.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=option.default,
            annotation=_in_panel(hints[option.name], PANELS[option.name]),
        )
        for option in fields(ListenerOptions)
    ]
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name == "listener":
            parameters += shared
        else:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    names = [option.name for option in fields(ListenerOptions)]

    @functools.wraps(command)
    def with_options(**given: Any) -> None:
        options = ListenerOptions(**{name: given.pop(name) for name in names})
        command(listener=options, **given)

    # What typer reads: inspect.signature() honours __signature__, and typing.get_type_hints()
    # reads __annotations__ (functools.wraps copied the command's, strings included).
    vars(with_options)["__signature__"] = signature.replace(parameters=parameters)
    with_options.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_options
