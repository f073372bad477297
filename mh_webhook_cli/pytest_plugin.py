"""pytest fixtures for testing a Magic Hour webhook handler: signed deliveries and the battery.

mhw registers this module as a pytest plugin (the ``pytest11`` entry point ``mhw``), so a
project that has mhw installed gets two fixtures with no configuration:

- ``magic_hour_webhook_secret``: the secret deliveries are signed with. Override it in your
  ``conftest.py`` with the one your app is configured with in tests; by default it is
  ``MAGIC_HOUR_WEBHOOK_SECRET`` from the environment, else :data:`DEFAULT_TEST_SECRET`.
- ``magic_hour_webhook``: a :class:`MagicHourWebhooks` that builds signed deliveries of any
  event type, with overrides, for the test client you already use (Starlette/FastAPI's
  ``TestClient``, Flask's ``app.test_client()``, Django's ``Client``), and runs ``mhw check``'s
  battery against a URL.

pytest imports this module in every session of every project where mhw is installed, so it
imports only the standard library and pytest at first; the rest of mhw loads when used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mh_webhook_cli.send.battery import CheckReport

DEFAULT_TEST_SECRET = "whsec_mhw_pytest_secret"  # noqa: S105 (a test secret, by design)
"""The secret deliveries are signed with when neither the fixture nor the environment says."""


@dataclass(frozen=True)
class SignedDelivery:
    """One webhook request as Magic Hour would send it: the exact body bytes and the headers."""

    body: bytes
    headers: dict[str, str]
    event: Any
    """The JSON document in ``body``; None when the body was given as raw bytes."""

    def post(self, client: Any, path: str = "/webhook") -> Any:
        """POST this delivery with a framework's test client and return its response.

        Starlette/FastAPI's ``TestClient`` (and any httpx client) take the body as
        ``content``; Flask's and Werkzeug's as ``data``; Django's as ``data`` with a
        ``content_type``. The bytes sent are exactly ``body``, so the signature holds.
        """
        module = type(client).__module__
        if module.startswith(("flask", "werkzeug")):
            return client.post(path, data=self.body, headers=self.headers)
        if module.startswith("django"):
            headers = {k: v for k, v in self.headers.items() if k.lower() != "content-type"}
            content_type = self.headers.get("Content-Type", "application/octet-stream")
            return client.post(path, data=self.body, content_type=content_type, headers=headers)
        return client.post(path, content=self.body, headers=self.headers)


class MagicHourWebhooks:
    """Signed Magic Hour deliveries for tests, and the ``mhw check`` battery."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def delivery(
        self,
        event_type: str = "video.completed",
        *,
        changes: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str | None] | None = None,
        secret: str | None = None,
        timestamp_offset: int = 0,
        signed: bool = True,
    ) -> SignedDelivery:
        """A delivery of ``event_type``, signed now with the secret, as Magic Hour sends it.

        The event is a realistic one of the nine types (``mhw fixtures show``); another type
        gets the payload of its resource's ``started`` event. ``changes`` sets fields by path
        (``{"payload.status": "error", "payload.downloads[0].url": ...}``). ``body`` replaces
        the event: a JSON value, or ``bytes``/``str`` sent as they are. ``headers`` are added,
        a None value removing one (``{"magic-hour-event-signature": None}``). ``secret``
        signs with another secret (a forgery); ``timestamp_offset`` signs at now + that many
        seconds (-600 is stale); ``signed=False`` sends no signature headers.
        """
        import time

        from mh_webhook_cli.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

        event: Any
        if body is None:
            event = build_event(event_type, changes)
            raw = _serialize(event)
        elif changes:
            raise ValueError("give either changes or body, not both")
        elif isinstance(body, (bytes, str)):
            event, raw = None, body.encode() if isinstance(body, str) else body
        else:
            event, raw = body, _serialize(body)
        sent = {"Content-Type": "application/json"}
        if signed:
            timestamp = int(time.time()) + timestamp_offset
            sent[SIGNATURE_HEADER] = sign(secret or self.secret, timestamp, raw)
            sent[TIMESTAMP_HEADER] = str(timestamp)
        for name, value in (headers or {}).items():
            sent = {key: old for key, old in sent.items() if key.lower() != name.lower()}
            if value is not None:
                sent[name] = value
        return SignedDelivery(raw, sent, event)

    def check(self, url: str, **options: Any) -> CheckReport:
        """Run ``mhw check``'s battery against the handler at ``url`` with this secret.

        ``options`` are :func:`~mh_webhook_cli.send.battery.run_checks`'s: ``only``,
        ``skip``, ``burst``, ``headers``, ``time_limit``.
        """
        from mh_webhook_cli.send.battery import run_checks

        return run_checks(url, self.secret, **options)

    def assert_handler_passes(self, url: str, **options: Any) -> CheckReport:
        """:meth:`check`, failing the test with the report card when a required check fails."""
        from mh_webhook_cli.report.check import check_plain

        report = self.check(url, **options)
        if not report.passed:
            pytest.fail(check_plain(report), pytrace=False)
        return report


def build_event(event_type: str, changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A realistic event of ``event_type`` at this moment, with ``changes`` applied by path."""
    import json
    from datetime import datetime, timezone

    from mh_webhook_cli.core.fixtures import apply_overrides
    from mh_webhook_cli.send import battery

    event = battery.build_event(event_type, now=datetime.now(timezone.utc))
    assignments = [f"{path}={json.dumps(value)}" for path, value in (changes or {}).items()]
    return apply_overrides(event, assignments)  # its OverrideError is a ValueError


def _serialize(event: Any) -> bytes:
    from mh_webhook_cli.send.delivery import serialize

    return serialize(event)


@pytest.fixture
def magic_hour_webhook_secret() -> str:
    """The webhook secret your handler uses in tests: override this fixture to set it."""
    return os.environ.get("MAGIC_HOUR_WEBHOOK_SECRET") or DEFAULT_TEST_SECRET


@pytest.fixture
def magic_hour_webhook(magic_hour_webhook_secret: str) -> MagicHourWebhooks:
    """Signed Magic Hour deliveries for your test client, and the ``mhw check`` battery."""
    return MagicHourWebhooks(magic_hour_webhook_secret)
