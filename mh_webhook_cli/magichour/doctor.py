"""The checks behind ``mhw doctor``: is everything in place to receive and trigger webhooks?

Each check says ok, warn or fail, what it found (secrets masked, with where they
came from) and, when not ok, the fix. A warning is something mhw works without
(no ngrok token: listening stays local); a failure is something a command will
stop on. Nothing here spends credits: the API key is checked with the free
account endpoint.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from mh_webhook_cli.config_file import origin
from mh_webhook_cli.core.settings import (
    API_KEY,
    WEBHOOK_SECRET,
    Resolved,
    clean_value,
    mask,
)
from mh_webhook_cli.errors import MhwError

Status = Literal["ok", "warn", "fail"]

SECRET_PREFIX = "mhw_"  # noqa: S105 - a prefix, not a secret
"""How Magic Hour's webhook secrets start (``mhw_live_`` + 32 characters)."""
WEBHOOKS_URL = "https://magichour.ai/developer?tab=webhooks"
CONNECT_TIMEOUT = 1.0
"""Seconds to wait for a listener on this machine: one that takes longer is not answering."""


@dataclass(frozen=True)
class Check:
    name: str
    """The setting or thing checked: ``api_key``, ``webhook_secret``, ``ngrok_authtoken``,
    ``listener``."""
    status: Status
    detail: str
    fix: str | None = None


def run_doctor_checks(
    api: Callable[[], tuple[Resolved, str]], secret_flag: list[str] | None
) -> list[Check]:
    """Every check, in the order ``mhw doctor`` shows them.

    ``api`` resolves the API key and base URL (it may raise :class:`MhwError` for a bad
    setting, which fails that check alone); ``secret_flag`` holds the ``--secret`` values.
    """
    import asyncio

    from mh_webhook_cli.config_file import effective

    def api_key_checks() -> list[Check]:
        key, base = api()
        return [asyncio.run(check_api_key(key, base))]

    return [
        *guarded(API_KEY.key, api_key_checks),
        *guarded(
            WEBHOOK_SECRET.key,
            lambda: check_webhook_secrets(effective(WEBHOOK_SECRET), secret_flag),
        ),
        *guarded("ngrok_authtoken", check_ngrok_authtoken),
        *guarded("listener", check_listeners),
    ]


def passed(checks: list[Check]) -> bool:
    """Warnings pass: only a failure makes ``mhw doctor`` exit 1."""
    return all(check.status != "fail" for check in checks)


def guarded(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    """``run``'s checks, or one failed check when getting there failed (a broken config file,
    a malformed URL): one bad setting must not hide the others' results."""
    try:
        return run()
    except MhwError as failure:
        return [Check(name, "fail", str(failure))]


async def check_api_key(key: Resolved, base_url: str) -> Check:
    """The key works: Magic Hour answers ``GET /v1/account`` with it."""
    from mh_webhook_cli.errors import ApiError
    from mh_webhook_cli.magichour.api_reference import DEFAULT_API_BASE, KEYS_URL

    if key.value is None:
        return Check(
            API_KEY.key,
            # Only `mhw trigger` needs one: listen, send, check and emulate work without an
            # account, so a fresh machine is not broken for lacking it.
            "warn",
            "not set: only mhw trigger needs one (to start real jobs)",
            f"get one at {KEYS_URL}, then run 'mhw config set api_key' or set {API_KEY.env}",
        )
    # Here, not above: the API client's httpx costs 50 ms, which a doctor with no key skips.
    from mh_webhook_cli.magichour.api import MagicHourApi

    where = "" if base_url == DEFAULT_API_BASE else f" at {base_url}"
    try:
        async with MagicHourApi(key.value, base_url, timeout=10.0, retries=1, backoff=0.5) as api:
            account = await api.account()
    except ApiError as failure:
        return Check(API_KEY.key, "fail", f"key from {origin(key)}: {failure}")
    credits = account.get("credits")
    facts = [
        str(account.get("email") or account.get("id") or "account ?"),
        f"{credits:,} credits" if isinstance(credits, int) else "credits unknown",
    ]
    if account.get("tier"):
        facts.append(f"tier {account['tier']}")
    return Check(API_KEY.key, "ok", f"{key.display} from {origin(key)}{where}: {', '.join(facts)}")


def check_webhook_secrets(resolved: Resolved, flag: list[str] | None) -> list[Check]:
    """A secret is there for ``mhw listen`` to verify with, and looks like Magic Hour's."""
    secrets = [(value, WEBHOOK_SECRET.flag) for value in flag or []]
    if not secrets and resolved.value is not None:
        secrets = [(resolved.value, origin(resolved))]
    if not secrets:
        return [
            Check(
                WEBHOOK_SECRET.key,
                "fail",
                "not set: mhw listen cannot verify signatures",
                f"copy it from {WEBHOOKS_URL}, then run 'mhw config set webhook_secret' or set "
                f"{WEBHOOK_SECRET.env}",
            )
        ]
    checks = []
    for raw, where in secrets:
        try:  # the rule every command applies (see cli.options.webhook_secrets)
            value, trimmed = clean_value(raw, f"webhook secret from {where}")
        except ValueError as failure:
            checks.append(Check(WEBHOOK_SECRET.key, "fail", str(failure), f"see {WEBHOOKS_URL}"))
            continue
        if trimmed:
            checks.append(Check(WEBHOOK_SECRET.key, "warn", trimmed))
        elif value.startswith(SECRET_PREFIX):
            checks.append(Check(WEBHOOK_SECRET.key, "ok", f"{mask(value)} from {where}"))
        else:
            checks.append(
                Check(
                    WEBHOOK_SECRET.key,
                    "warn",
                    f"{mask(value) or 'a short value'} from {where} does not start with "
                    f"{SECRET_PREFIX} as Magic Hour's do",
                    f"check that you copied the webhook's secret from {WEBHOOKS_URL} "
                    "(not the API key)",
                )
            )
    return checks


def check_ngrok_authtoken() -> list[Check]:
    """A token is there for ``mhw listen`` to open a public URL; without one it stays local."""
    from mh_webhook_cli.tunnel import NO_AUTHTOKEN_FIX, authtoken_source

    token = authtoken_source()
    if token.value is None:
        return [
            Check(
                "ngrok_authtoken",
                "warn",
                "not set: mhw listen works locally, but Magic Hour cannot reach it",
                NO_AUTHTOKEN_FIX,
            )
        ]
    return [Check("ngrok_authtoken", "ok", f"{token.display} from {token.origin}")]


def check_listeners() -> list[Check]:
    """Each running ``mhw listen`` accepts connections on its port."""
    from mh_webhook_cli.receive.registry import running_listeners

    listeners = running_listeners()
    if not listeners:
        return [Check("listener", "warn", "none running", "start one with 'mhw listen'")]
    checks = []
    for listener in listeners:
        public = f", public {listener.public_url}" if listener.public_url else ""
        described = f"{listener.url} (pid {listener.pid}{public})"
        if _accepts(urlsplit(listener.url).hostname or "127.0.0.1", listener.port):
            checks.append(Check("listener", "ok", described))
        else:
            checks.append(
                Check(
                    "listener",
                    "warn",
                    f"{described} is not accepting connections",
                    "it may be stopping; else stop it and start 'mhw listen' again",
                )
            )
    return checks


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return True
    except OSError:
        return False
