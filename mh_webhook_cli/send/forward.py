"""Forwarding what ``mhw listen`` receives to the user's handlers (``--forward-to``).

A forward sends the exact bytes and headers received, so that the handler verifies the
signature as it would in production, within a total deadline and keeping only the start
of the handler's answer: a slow or endless handler costs the listener neither time nor
memory. Every forward carries :data:`~mh_webhook_cli.send.client.FORWARDED_HEADER`, so
listeners forwarding to each other cannot loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mh_webhook_cli.core.hosts import is_local, same_host
from mh_webhook_cli.core.request import HOP_BY_HOP_HEADERS, ForwardResult, Request, matches
from mh_webhook_cli.errors import DeadlineExceeded, UsageError
from mh_webhook_cli.send.client import FORWARDED_HEADER, Answer
from mh_webhook_cli.send.client import request as bounded_request

if TYPE_CHECKING:
    import httpx

FORWARD_BODY_CHARACTERS = 2000
"""Characters of a handler's answer that are stored and shown; only these are ever kept."""


@dataclass(frozen=True)
class ForwardRoute:
    """Where to forward: every event, or those whose type matches ``pattern`` (``video.*``)."""

    url: str
    pattern: str | None = None

    @classmethod
    def parse(cls, text: str) -> ForwardRoute:
        """``URL`` or ``PATTERN=URL``, as given to ``--forward-to``."""
        pattern, equals, url = text.partition("=")
        if equals and "://" not in pattern:
            return cls(url.strip(), pattern.strip())
        return cls(text.strip())

    def wants(self, event_type: str | None) -> bool:
        return self.pattern is None or matches(event_type, (self.pattern,))


def refuse_forwarding_loop(routes: Sequence[ForwardRoute], host: str, port: int) -> None:
    """UsageError when a route leads straight back to a listener bound to ``host``:``port``.

    What can be told without a DNS lookup (see :mod:`mh_webhook_cli.core.hosts`): the same port,
    on the bound address itself however spelled or, for a listener on a loopback or
    any-address, on ``localhost``, a loopback or an any-address. Every other way back (a
    name of this machine, a tunnel, a second listener forwarding here) is cut by
    :data:`FORWARDED_HEADER` after one hop.
    """
    for route in routes:
        parts = urlsplit(route.url)
        target_port = parts.port or (443 if parts.scheme == "https" else 80)
        target = parts.hostname or ""
        if target_port == port and (
            same_host(target, host) or (is_local(target) and is_local(host))
        ):
            raise UsageError(
                f"--forward-to {route.url} is this listener itself: every request would be "
                "forwarded to itself again and again; forward to your handler's port"
            )


def was_forwarded(request: Request) -> bool:
    """Whether a listener forwarded ``request`` already: forwarding it again could loop."""
    return FORWARDED_HEADER in request.by_name


async def forward(
    client: httpx.AsyncClient,
    url: str,
    request: Request,
    *,
    extra_headers: Sequence[tuple[str, str]],
    timeout: float,
) -> ForwardResult:
    """Send the exact bytes and headers received (plus ``-H`` extras) to the user's handler.

    ``timeout`` (``--forward-timeout``) bounds the whole exchange, and only the stored start
    of the answer is kept (see :func:`mh_webhook_cli.send.client.request`): a handler that
    answers slowly or endlessly costs this listener neither time past the timeout nor memory.
    """
    import httpx

    headers = [
        (name, value) for name, value in request.headers if name.lower() not in HOP_BY_HOP_HEADERS
    ]
    headers += [*extra_headers, (FORWARDED_HEADER, "1")]
    try:
        answer = await bounded_request(
            client,
            "POST",
            url,
            content=request.body,
            headers=headers,
            deadline=timeout,
            keep=FORWARD_BODY_CHARACTERS * 4,  # UTF-8 needs at most 4 bytes a character
        )
    except (DeadlineExceeded, httpx.HTTPError) as failure:
        return failure_result(url, failure)
    return answer_result(url, answer)


def answer_result(url: str, answer: Answer) -> ForwardResult:
    """What a handler answered, as a forward's result is stored and shown (also a replay's)."""
    return ForwardResult(
        target=url,
        status=answer.status,
        latency_ms=round(answer.latency_ms, 1),
        error=None,
        body=answer.body.decode("utf-8", errors="replace")[:FORWARD_BODY_CHARACTERS],
    )


def failure_result(url: str, failure: Exception) -> ForwardResult:
    """Why a handler gave no answer, in one line, as a forward's result (also a replay's)."""
    if isinstance(failure, DeadlineExceeded):
        return _failed(url, f"no complete answer within {failure.seconds:g} s ({failure.phase})")
    text = str(failure) or type(failure).__name__
    if "refused" in text.lower() or "connect" in type(failure).__name__.lower():
        text = f"cannot connect ({text})"
    return _failed(url, text)


def stopped_forward(url: str) -> ForwardResult:
    """What a forward that mhw stopped before the handler answered came to."""
    return _failed(url, "stopped: mhw was shutting down")


def _failed(url: str, error: str) -> ForwardResult:
    return ForwardResult(target=url, status=None, latency_ms=None, error=error, body=None)
