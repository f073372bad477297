"""Send a captured request again: its exact bytes and headers, or re-signed with a fresh timestamp.

The signature covers a timestamp that Magic Hour's handlers reject after 5 minutes, so a
replay of an old capture either keeps the original signature (to reproduce exactly what
arrived) or is signed again now with the webhook secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mh_webhook_cli.core.request import HOP_BY_HOP_HEADERS
from mh_webhook_cli.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
from mh_webhook_cli.send.client import FORWARDED_HEADER, Answer, request
from mh_webhook_cli.send.delivery import Signer

if TYPE_CHECKING:
    import httpx

REPLAY_KEEP = 4096
"""Bytes of the target's answer kept to show."""


def replay_headers(
    headers: Sequence[tuple[str, str]], body: bytes, resign_with: str | None, now: float
) -> list[tuple[str, str]]:
    """The captured headers to send again, in order; re-signed when ``resign_with`` is a secret.

    The hop header goes too: a replay is a new delivery, which the target may forward.
    """
    dropped = HOP_BY_HOP_HEADERS | {FORWARDED_HEADER}
    if resign_with is not None:
        dropped |= {SIGNATURE_HEADER, TIMESTAMP_HEADER}
    kept = [(name, value) for name, value in headers if name.lower() not in dropped]
    return [*kept, *Signer(resign_with).headers(body, now).items()]


async def replay(
    client: httpx.AsyncClient,
    url: str,
    method: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    deadline: float,
) -> Answer:
    """Send ``body`` with ``headers`` (see :func:`replay_headers`) to ``url``, within ``deadline``.

    Raises as :func:`mh_webhook_cli.send.client.request` does.
    """
    return await request(
        client, method, url, deadline=deadline, keep=REPLAY_KEEP, content=body, headers=headers
    )
