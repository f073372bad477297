"""Which settings exist, where each may come from, and which source wins.

One rule for every command: a flag beats the environment, which beats mhw's
config file. The API key alone has a fourth, last source: the official Magic
Hour CLI's config file, so that someone logged in there needs no second set-up.

This module is pure: the caller reads the environment and the files (see
:mod:`mh_webhook_cli.config_file`) and passes them in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from mh_webhook_cli.errors import InvalidValue


class Source(str, Enum):
    """Where a setting's value came from, as shown by ``mhw config list``."""

    FLAG = "flag"
    ENV = "env"
    CONFIG = "config"
    MAGIC_HOUR_CLI = "magic-hour-cli"
    UNSET = "unset"


@dataclass(frozen=True)
class Setting:
    """A value mhw reads from a flag, an environment variable or its config file."""

    key: str
    env: str
    flag: str
    secret: bool
    description: str
    from_magic_hour_cli: bool = False
    """Fall back to the official Magic Hour CLI's config (``{"api_key": ...}``)."""


WEBHOOK_SECRET = Setting(
    "webhook_secret",
    "MAGIC_HOUR_WEBHOOK_SECRET",
    "--secret",
    secret=True,
    description="Webhook signing secret from the Developer Hub (mhw_live_...)",
)
API_KEY = Setting(
    "api_key",
    "MAGIC_HOUR_API_KEY",
    "--api-key",
    secret=True,
    description="Magic Hour API key, for trigger and doctor",
    from_magic_hour_cli=True,
)
NGROK_AUTHTOKEN = Setting(
    "ngrok_authtoken",
    "NGROK_AUTHTOKEN",
    "--ngrok-authtoken",
    secret=True,
    description="ngrok authtoken, for a public URL in listen",
)
API_BASE = Setting(
    "api_base",
    "MAGIC_HOUR_API_BASE",
    "--api-base",
    secret=False,
    description="Magic Hour API base URL (default https://api.magichour.ai)",
)

SETTINGS: dict[str, Setting] = {
    s.key: s for s in (WEBHOOK_SECRET, API_KEY, NGROK_AUTHTOKEN, API_BASE)
}


def setting_named(key: str) -> Setting:
    """The setting ``key`` names (``api-key`` and ``API_KEY`` too), or a one-line
    :class:`~mh_webhook_cli.errors.InvalidValue` listing the known ones."""
    try:
        return SETTINGS[key.replace("-", "_").lower()]
    except KeyError:
        raise InvalidValue(f"unknown setting {key!r}; known: {', '.join(SETTINGS)}") from None


@dataclass(frozen=True)
class Resolved:
    """A setting's effective value and where it came from."""

    setting: Setting
    value: str | None
    source: Source

    @property
    def display(self) -> str:
        """The value as it may be shown: masked when it is a secret."""
        if self.value is None:
            return ""
        return mask(self.value) if self.setting.secret else self.value


def resolve(
    setting: Setting,
    *,
    flag: str | None = None,
    env: Mapping[str, str],
    config: Mapping[str, object],
    magic_hour_cli: Mapping[str, object] | None = None,
) -> Resolved:
    """Pick the value of ``setting`` by precedence: flag > env > config (> Magic Hour CLI).

    Empty strings count as unset, so ``MAGIC_HOUR_WEBHOOK_SECRET=`` in a
    shell does not shadow the config file with nothing.
    """
    candidates: list[tuple[Source, object]] = [
        (Source.FLAG, flag),
        (Source.ENV, env.get(setting.env)),
        (Source.CONFIG, config.get(setting.key)),
    ]
    if setting.from_magic_hour_cli and magic_hour_cli is not None:
        candidates.append((Source.MAGIC_HOUR_CLI, magic_hour_cli.get(setting.key)))
    for source, value in candidates:
        if isinstance(value, str) and value:
            return Resolved(setting, value, source)
    return Resolved(setting, None, Source.UNSET)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_value(value: str, source: str) -> tuple[str, str | None]:
    """A setting's value as mhw uses it, and a warning to show when it had to be trimmed.

    The one rule for a secret (and any setting) wherever it comes from: it must be valid
    UTF-8, since the webhook secret is the HMAC key as UTF-8 bytes; a ``str`` from argv or
    the environment holds undecodable bytes as lone surrogates (``surrogateescape``), which
    no HMAC, header or JSON file can carry. Surrounding whitespace is removed, with a
    warning rather than an error: Magic Hour's secrets and tokens never contain any, while
    copy-paste, ``echo >`` and .env files add newlines and spaces that would silently give
    another signature. Control characters inside (a NUL from a binary file, an escape
    sequence) are never part of one and are refused. ``source`` names the value and where
    it came from (``"webhook secret from --secret"``) in the one-line
    :class:`~mh_webhook_cli.errors.InvalidValue` and the
    warning, which never show the value itself.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(
            f"{source} is not valid UTF-8 text (it holds raw bytes such as "
            "Latin-1 or binary data): copy it again from where it was issued"
        ) from None
    stripped = value.strip()
    if not stripped:
        raise InvalidValue(f"{source} is empty")
    if _CONTROL.search(stripped):
        raise InvalidValue(
            f"{source} holds control characters: copy it again from where it was issued"
        )
    if stripped == value:
        return value, None
    return stripped, (
        f"ignored the whitespace around the {source} (a newline from copy-paste or echo?): "
        "remove it where it is stored"
    )


_KNOWN_PREFIX = re.compile(r"^([A-Za-z0-9]{2,8}_(?:[A-Za-z]{2,8}_)?)")


SHOWN_FROM = 20
"""The shortest secret :func:`mask` shows four characters of: 16 or more stay hidden."""


def mask(secret: str) -> str:
    """Show enough of a secret to recognise it, never enough to use it.

    ``mhw_live_0123...a1b2`` becomes ``mhw_live_…a1b2``: the prefix says which
    kind of secret it is, the last four characters tell two secrets apart. Below
    :data:`SHOWN_FROM` characters four of them would be a good part of the secret
    (``dev-endpoint`` as ``…oint``): such a value shows as ``(hidden)``, which says
    that one is set and nothing of it.
    """
    if len(secret) < SHOWN_FROM:
        return "(hidden)" if secret else ""
    match = _KNOWN_PREFIX.match(secret)
    prefix = match.group(1) if match and len(secret) - len(match.group(1)) >= 16 else ""
    # Imported here: json_text brings orjson, 4 ms of start-up for commands that never mask.
    from mh_webhook_cli.core.json_text import escape_lone_surrogates

    # An undecodable byte (a lone surrogate, from surrogateescape) must not break the output.
    return f"{prefix}…{escape_lone_surrogates(secret[-4:])}"


def redact(text: str, secret: str) -> str:
    """``text`` with every copy of ``secret`` masked (see :func:`mask`): for messages that
    may echo a key or token back (an error from a server, an agent's log line)."""
    return text.replace(secret, mask(secret)) if secret else text
