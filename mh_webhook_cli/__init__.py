"""mhw: the developer tool for Magic Hour webhooks.

The signing core is importable on its own, with no I/O, and ``run_checks`` grades a
webhook handler by Magic Hour's rules (what ``mhw check`` runs)::

    from mh_webhook_cli import sign, verify

    signature = sign(secret, timestamp, raw_body)
    result = verify(raw_body, request.headers, secret)
    if not result.valid:
        print(result.reason.value, [hint.message for hint in result.hints])

    report = run_checks("http://127.0.0.1:8000/webhook", secret)
    assert report.passed, report.failed_ids

The names in ``__all__`` are the public API (``tests/test_exported_members.py`` keeps the
list honest); everything else may change between releases. Every error mhw raises derives
from :class:`MhwError` (the tree is drawn in :mod:`mh_webhook_cli.errors`).

How the package is built
------------------------
Four layers; a module imports only from its own layer or a lower one, never in a cycle
(``tests/test_layers.py`` checks every import, those inside functions included):

1. ``core/`` and ``errors``: pure (no sockets, no files, no clock unless passed in):
   ``signing`` (sign, check), ``verification`` (verify = check + ``diagnosis``), ``catalog``
   (the nine events' models and validation findings), ``fixtures`` (example events, the
   ``--set`` path language), ``settings`` (which source wins), ``times`` (parsing and
   showing times), ``http_text`` (raw HTTP text), ``request`` (one received request),
   ``hosts``, ``limits``, ``json_text``. ``errors`` imports nothing; ``core`` only ``errors``.
2. Edges, each doing one kind of I/O, lowest first: ``files`` (bounded reads of what a user
   points at) < ``config_file`` (settings on disk) < ``tunnel`` (ngrok); ``event_loop``
   (one loop per command, Ctrl-C and SIGTERM); ``send/`` (the bounded HTTP client, signed
   deliveries) < ``receive/`` (HTTP server, listener, capture store and its exports, the
   ``mhw listen`` session; it may open a tunnel) < ``magichour/`` (API client, emulator,
   ``mhw trigger``, doctor's checks). An edge never imports ``report/`` or
   ``cli/``: sessions and engines emit typed events to a reporter they are handed.
3. ``report/``: how results look. One module per command's view turns those events and
   results into text for people or JSON lines for machines; ``console`` writes them,
   ``escape`` makes every sender-controlled string safe for a terminal, ``writer`` keeps a
   slow stdout from stalling anyone.
4. ``cli/``: thin typer commands that parse options, call the library, hand it a reporter
   and map errors to exit codes in one place (``cli.main``). ``pytest_plugin`` is the other
   entry point, pytest's (the ``magic_hour_webhook`` fixtures); ``web/`` is the inspector's
   page, read as package data.

Where a webhook goes from the socket to the screen, in ``mhw listen``:
``receive/http.py`` frames the bytes with llhttp into one ``core.request.Request``;
``receive/listener.py`` verifies it (``core.signing.check``) and validates it
(``core.catalog``), commits it to the SQLite store (``receive/store.py``, off the event loop)
and only then answers the sender; off the request path the session
(``receive/session.py``) hands it to the listen reporter (``report/listen.py``), which
renders it as text or a JSON line through ``report/console.py`` and ``report/writer.py``,
while forwards go out through ``send/``. ``cli/listen.py`` only wires these together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mh_webhook_cli.core.diagnosis import Hint
    from mh_webhook_cli.core.signing import (
        DEFAULT_TOLERANCE_SECONDS,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        Reason,
        check,
        repeats_signature_header,
        sign,
    )
    from mh_webhook_cli.core.verification import VerifyResult, verify
    from mh_webhook_cli.errors import (
        ApiError,
        Cancelled,
        CaptureError,
        ExitCode,
        InvalidValue,
        MhwError,
        OverrideError,
        StoreClosed,
        StoreError,
        TunnelError,
        UsageError,
    )
    from mh_webhook_cli.send.battery import (
        CHECK_IDS,
        CheckOutcome,
        CheckReport,
        CheckResult,
        check_handler,
        run_checks,
    )

__version__ = "0.1.0"

_HOMES = {
    "mh_webhook_cli.core.signing": (
        "DEFAULT_TOLERANCE_SECONDS",
        "SIGNATURE_HEADER",
        "TIMESTAMP_HEADER",
        "Reason",
        "check",
        "repeats_signature_header",
        "sign",
    ),
    "mh_webhook_cli.core.diagnosis": ("Hint",),
    "mh_webhook_cli.core.verification": ("VerifyResult", "verify"),
    "mh_webhook_cli.send.battery": (
        "CHECK_IDS",
        "CheckOutcome",
        "CheckReport",
        "CheckResult",
        "check_handler",
        "run_checks",
    ),
    "mh_webhook_cli.errors": (
        "ApiError",
        "Cancelled",
        "CaptureError",
        "ExitCode",
        "InvalidValue",
        "MhwError",
        "OverrideError",
        "StoreClosed",
        "StoreError",
        "TunnelError",
        "UsageError",
    ),
}
"""Where each public name lives, so that importing this package imports none of them."""
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "CHECK_IDS",
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ApiError",
    "Cancelled",
    "CaptureError",
    "CheckOutcome",
    "CheckReport",
    "CheckResult",
    "ExitCode",
    "Hint",
    "InvalidValue",
    "MhwError",
    "OverrideError",
    "Reason",
    "StoreClosed",
    "StoreError",
    "TunnelError",
    "UsageError",
    "VerifyResult",
    "__version__",
    "check",
    "check_handler",
    "repeats_signature_header",
    "run_checks",
    "sign",
    "verify",
]


def __getattr__(name: str) -> Any:
    # Imported on first use: every mhw command imports this package, and only
    # some of them need the signing core (mhw's start-up time is measured).
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'mh_webhook_cli' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
