"""One HTTP request as received: the same type from the socket to the store to the screen.

The HTTP server builds it (:mod:`mh_webhook_cli.receive.http`), ``mhw verify`` parses one
from raw HTTP text (:mod:`mh_webhook_cli.core.http_text`), and replays re-send it.
"""

from __future__ import annotations

from dataclasses import dataclass

HOP_BY_HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "expect"}
)
"""Headers about one connection, not the message: never copied when re-sending a request."""


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

    def header(self, name: str) -> str | None:
        return self.by_name.get(name.lower())

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]
