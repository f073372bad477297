"""One HTTP request as received, and what mhw made of it: the same types from the socket to
the store to every display.

:class:`Request` is what the HTTP server builds (:mod:`mh_webhook_cli.receive.http`), ``mhw
verify`` parses from raw HTTP text (:mod:`mh_webhook_cli.core.http_text`), and replays re-send.
:class:`Received` is a request once judged: the listener builds one per request, the store
keeps it and reads it back, ``mhw trigger`` checks it, and every reporter shows it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

HOP_BY_HOP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "transfer-encoding",
        "keep-alive",
        "expect",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    }
)
"""Headers about one connection, not the message: never copied when re-sending a request."""

VERIFIED = "ok"
"""The verification of a correctly signed request: ``Reason.OK``'s value (a test holds them
equal), as a plain string: cheaper to compare than the enum, how it is stored, and without
importing :mod:`~mh_webhook_cli.core.signing` (5 ms) into ``mhw events``."""
UNSIGNED = "unsigned"
"""The verification of a request without signature headers."""
UNCHECKED = "unchecked"
"""The verification of a signed request when no secret was given to check it with."""


@dataclass(slots=True)
class Request:
    """One request as received: the body is the exact bytes, de-chunked if it was chunked.

    Treat it as read-only. It is not frozen only because a frozen dataclass's
    ``__init__`` costs a microsecond more, and a listener builds thousands a second.
    """

    method: str
    target: str
    headers: list[tuple[str, str]]
    """In the order received, repeated headers kept."""
    body: bytes
    client: str
    by_name: dict[str, str]
    """Lower-cased names to values (a repeated header gives its last, as everywhere in mhw):
    the parser builds it anyway, and a listener looks headers up several times a request."""
    http_version: str = "1.1"

    @classmethod
    def of(
        cls,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        client: str = "",
    ) -> Request:
        """One built from its parts, not from a socket: a capture, a stored row, a test's."""
        return cls(method, target, headers, body, client, {n.lower(): v for n, v in headers})

    def header(self, name: str) -> str | None:
        return self.by_name.get(name.lower())

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class ForwardResult(TypedDict):
    """What happened when the listener forwarded a request to a handler."""

    target: str
    status: int | None
    latency_ms: float | None
    error: str | None
    body: str | None


FindingRecord = dict[str, str]
"""A schema finding as kept with a request: ``{"path", "code", "message"}`` (the form it is
stored and shown in as JSON; :class:`mh_webhook_cli.core.catalog.Finding` is the validator's)."""


@dataclass(slots=True)
class Received:
    """A received request and what mhw made of it: its verification, its schema findings, the
    answer it got, and once stored its id, the delivery it repeats and its forwards.

    The event type and project id are read from the body once, when it is judged; a request
    read back from the store has them from their columns. Treat it as read-only, apart from
    what storing and forwarding fill in (``id``, ``retry_of``, ``forwards``, and ``answer``
    under ``--mirror-status``); not frozen for the same reason as :class:`Request`.
    """

    request: Request
    received_at: float
    """Unix seconds."""
    verification: str
    """A :class:`~mh_webhook_cli.core.signing.Reason` value, :data:`UNSIGNED` or
    :data:`UNCHECKED`."""
    findings: list[FindingRecord]
    answer: int
    """The HTTP status the sender was answered with."""
    event_type: str | None
    project_id: str | None
    document: Any = None
    """The body parsed as JSON; None when it is not JSON, or when not read (the store keeps
    the exact body, not its parse: see :func:`read_event`)."""
    id: int | None = None
    """Its id in the capture store, once stored."""
    retry_of: int | None = None
    """The stored delivery this one repeats (same type, project and body): a retry."""
    forwards: list[ForwardResult] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        received_at: float,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        client: str,
        event_type: str | None,
        project_id: str | None,
        verification: str,
        findings: list[FindingRecord],
        answer: int,
        *,
        id: int | None = None,
        retry_of: int | None = None,
        forwards: list[ForwardResult] | None = None,
    ) -> Received:
        """One built from its parts, without a socket: a row of the store, a test's request."""
        return cls(
            Request.of(method, target, headers, body, client),
            received_at,
            verification,
            findings,
            answer,
            event_type,
            project_id,
            id=id,
            retry_of=retry_of,
            forwards=forwards if forwards is not None else [],
        )

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def target(self) -> str:
        """The request target as received, query string included."""
        return self.request.target

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.request.headers

    @property
    def body(self) -> bytes:
        """Exactly the bytes received (de-chunked): what a signature covers."""
        return self.request.body

    @property
    def client(self) -> str:
        """``ip:port`` of the sender."""
        return self.request.client

    @property
    def valid(self) -> bool:
        """Signed correctly and matching the schema: what ``--invalid`` leaves out."""
        return self.verification == VERIFIED and not self.findings

    @property
    def project_status(self) -> str | None:
        """The project's status the event reports (``complete``), when the body was read."""
        document = self.document
        payload = document.get("payload") if isinstance(document, dict) else None
        status = payload.get("status") if isinstance(payload, dict) else None
        return status if isinstance(status, str) else None


def read_event(document: Any) -> tuple[str | None, str | None]:
    """The event type and project id of a parsed body; None for what is not a string (events
    come from anyone, so no assumptions)."""
    if not isinstance(document, dict):
        return None, None
    event_type = document.get("type")
    payload = document.get("payload")
    project_id = payload.get("id") if isinstance(payload, dict) else None
    return (
        event_type if isinstance(event_type, str) else None,
        project_id if isinstance(project_id, str) else None,
    )


def matches(event_type: str | None, patterns: Sequence[str]) -> bool:
    """Whether an event type matches any of ``patterns`` (``video.*``); no patterns match all.

    The language of ``--events``, ``--expect`` and ``--forward-to TYPES=URL``:
    :func:`fnmatch.fnmatchcase`'s globs.
    """
    return not patterns or any(fnmatch.fnmatchcase(event_type or "", p) for p in patterns)
