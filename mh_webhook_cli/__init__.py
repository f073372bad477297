"""mhw: the developer tool for Magic Hour webhooks.

The signing core is importable on its own, with no I/O::

    from mh_webhook_cli import sign, verify

    signature = sign(secret, timestamp, raw_body)
    result = verify(raw_body, request.headers, secret)
    if not result.valid:
        print(result.reason.value, [hint.message for hint in result.hints])
"""

from mh_webhook_cli.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Hint,
    Reason,
    VerifyResult,
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
    "sign",
    "verify",
]
