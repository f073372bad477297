"""What a running listener tells its reporter: one typed event per thing that happens.

The listener and its session decide nothing about how things look. They hand each of these
to a :class:`Reporter` the command chose (text for people or JSON lines for machines, in
:mod:`mh_webhook_cli.report.listen`; with ``--ui``,
:class:`~mh_webhook_cli.report.inspector.InspectorFeed` also streams requests to the web
inspector), as stripe-cli's ``listen`` sends typed elements to one visitor. A reporter is
called on the event loop: it must not block.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, Union

from mh_webhook_cli.core.request import Received


@dataclass(frozen=True)
class Listening:
    """The listener accepts connections: where, and how it is set up."""

    url: str
    """The local URL it receives webhooks at."""
    public_url: str | None
    """The tunnel's URL, when there is one."""
    webhook_url: str | None
    """With a tunnel, the URL to register in the Developer Hub."""
    any_path: bool
    """Whether every path is accepted (no ``--path``)."""
    secrets: tuple[str, ...]
    """The webhook secrets, masked (never in full, wherever a reporter sends them)."""
    store: str | None
    """The capture store's path; None with ``--no-store``."""
    forwards: tuple[tuple[str | None, str], ...]
    """``--forward-to`` routes as (type pattern or None for all, URL)."""
    expected: tuple[str, ...]
    """``--expect`` patterns."""
    count: int
    """With ``--expect``: how many of each."""
    ui_url: str | None = None
    """The web inspector's page (``--ui``), on 127.0.0.1 only."""
    events: tuple[str, ...] = ()
    """``--events`` patterns: only these are shown and forwarded (all are stored)."""


@dataclass(frozen=True)
class TunnelChanged:
    """The ngrok tunnel is starting, dropped, reconnected, or its agent stopped."""

    state: str
    """``starting``, ``reconnecting``, ``connected``, ``stopped``, or what else pyngrok says."""
    detail: str = ""


@dataclass(frozen=True)
class AgentLog:
    """A line of the ngrok agent's own log."""

    level: str
    """ngrok's level names: ``info``, ``warn``, ``eror``, ``crit``..."""
    line: str

    @property
    def serious(self) -> bool:
        return self.level in ("warn", "eror", "crit")


@dataclass(slots=True)
class RequestReceived:
    """A request was stored (unless ``--no-store``) and answered.

    Treat it as read-only: not frozen only because a frozen dataclass's ``__init__`` costs
    twice as much, and a listener reports thousands a second.
    """

    received: Received
    shown: bool
    """Whether ``--events`` lets it be shown (and forwarded); a reporter hears only of those."""
    forwarding: bool
    """A :class:`Forwarded` for it follows, once its forwards are done."""
    delay: float = 0.0
    """Seconds its answer is held back (``--respond-delay``): past Magic Hour's 10 s the
    sender has given up by then, and delivers again."""


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A shown request's forwards are done (or were stopped): ``received.forwards``."""

    received: Received


@dataclass(frozen=True, slots=True)
class Refused:
    """A request refused at the HTTP level (malformed, too large, too slow...)."""

    client: str
    status: int
    reason: str


@dataclass(frozen=True)
class Problem:
    """Something failed that is not the sender's doing (the store, a forward, the tunnel):
    one line, and the listener goes on."""

    message: str


@dataclass(frozen=True)
class Expectation:
    """``--expect`` is settled: every expected event arrived, or the time ran out."""

    met: bool
    arrived: tuple[tuple[str, int], ...]
    """Each expected pattern with how many arrived."""
    count: int
    """How many of each were expected."""


@dataclass(frozen=True)
class Draining:
    """Stopping: waiting a bounded time for forwards still under way."""

    forwards: int
    seconds: float


@dataclass(frozen=True)
class ForwardsStopped:
    """Forwards still under way at shutdown were stopped: their results are not stored."""

    forwards: int


@dataclass(frozen=True)
class UnstoredAtClose:
    """Requests answered 503 because the store closed first; their senders deliver them again."""

    requests: int


@dataclass(frozen=True)
class Stopped:
    """The session is over: the last thing a reporter hears."""

    counts: Counter[tuple[str, str]]
    """Requests by (event type, verification)."""
    refused: int
    """Requests refused at the HTTP level."""
    interrupted: bool = False
    """Stopped by Ctrl-C or SIGTERM (a terminal has echoed ``^C`` where the cursor was)."""


Activity = Union[  # noqa: UP007 (a runtime alias)
    Listening,
    TunnelChanged,
    AgentLog,
    RequestReceived,
    Forwarded,
    Refused,
    Problem,
    Expectation,
    Draining,
    ForwardsStopped,
    UnstoredAtClose,
    Stopped,
]


class Reporter(Protocol):
    """Shows a listener's activity; chosen by the command, handed to the session."""

    def open(self, reader_gone: Callable[[], None]) -> None:
        """A session starts: route the output so that it never blocks the loop.

        ``reader_gone`` may be called from any thread, once, when stdout's reader left
        (``| head -1``): the session then ends as on SIGTERM.
        """

    def report(self, activity: Activity) -> None:
        """Show one thing that happened (on the event loop: it must not block)."""

    def close(self) -> bool:
        """The session is over: write what is pending, restore the output; whether stdout's
        reader left before the end."""
