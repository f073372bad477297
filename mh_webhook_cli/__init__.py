"""mhw: the developer tool for Magic Hour webhooks.

The signing core is importable on its own, with no I/O::

    from mh_webhook_cli import sign, verify

    signature = sign(secret, timestamp, raw_body)
    result = verify(raw_body, request.headers, secret)
    if not result.valid:
        print(result.reason.value, [hint.message for hint in result.hints])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mh_webhook_cli.core.signing import (
        DEFAULT_TOLERANCE_SECONDS,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        Hint,
        Reason,
        VerifyResult,
        check,
        repeats_signature_header,
        sign,
        verify,
    )

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Hint",
    "Reason",
    "VerifyResult",
    "__version__",
    "check",
    "repeats_signature_header",
    "sign",
    "verify",
]


def __getattr__(name: str) -> Any:
    # Imported on first use: every mhw command imports this package, and only
    # some of them need the signing core (mhw's start-up time is measured).
    if name in __all__:
        from mh_webhook_cli.core import signing

        return getattr(signing, name)
    raise AttributeError(f"module 'mh_webhook_cli' has no attribute {name!r}")
