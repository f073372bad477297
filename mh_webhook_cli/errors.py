"""Every error mhw raises, and the exit code each one means.

The library raises these directly; the CLI entry point (:func:`mh_webhook_cli.cli.main`)
is the one place that turns one into a line on stderr and its exit code, never a
traceback. A class's code is its ``exit_code``; a subclass inherits it::

    Exception
    ├── MhwError ·························· exit 1: a runtime failure the user can fix
    │   ├── Cancelled ····················· exit 130: Ctrl-C before anything was done
    │   ├── UsageError ···················· exit 2: the command line or an input is wrong
    │   │   └── InvalidValue (+ ValueError)   a value given to mhw is not valid
    │   │       ├── CaptureError              raw HTTP text that is not a request
    │   │       └── OverrideError             a --set PATH=VALUE that cannot be applied
    │   ├── StoreError ···················· exit 1: the capture store cannot be opened,
    │   │   │                                read or written (a full disk is not bad input)
    │   │   └── StoreClosed                   not stored: the store is closing, mhw stops
    │   ├── TunnelError ··················· exit 1: the ngrok tunnel could not open
    │   └── ApiError ······················ exit 3: the Magic Hour API refused or failed
    └── TimeoutError
        └── DeadlineExceeded                 an exchange outlived its total deadline; the
                                             sender turns it into a result, never an exit

:class:`InvalidValue` is also a :class:`ValueError`, so that a library caller who passes a
bad value catches what Python code expects, while the CLI shows it as a usage error.
Mistakes in how the library itself is called (no secret at all, a naive datetime) stay
plain ``ValueError``/``TypeError``: no user input can cause them.

``mhw trigger`` ends with codes 4 to 7 from its verdict, not from an exception.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """The command did what was asked and every check passed."""
    FAILED = 1
    """A check failed (invalid signature, schema findings, a handler that did not answer 2xx),
    or something at run time did (the store's disk, the tunnel)."""
    USAGE = 2
    """Bad input: a wrong option, an unreadable file, a malformed request or config."""
    API_ERROR = 3
    """The Magic Hour API refused a request (bad key, no credits, invalid body) or failed."""
    JOB_FAILED = 4
    """``mhw trigger``: the job errored (and ``--expect-error`` was not given)."""
    NO_WEBHOOK = 5
    """``mhw trigger``: the job finished but its webhook did not arrive in time."""
    BAD_SIGNATURE = 6
    """``mhw trigger``: the webhook arrived but its signature does not verify."""
    JOB_TIMEOUT = 7
    """``mhw trigger``: the job had not finished when ``--timeout`` ran out."""
    INTERRUPTED = 130
    """Ctrl-C (SIGINT) stopped a command that does not stop on it by design (a listener
    does, and exits 0): a shell reports the same 128 + 2."""
    BROKEN_PIPE = 141
    """stdout's reader went away (``mhw ... | head -1``): mhw stopped quietly, as a filter
    killed by SIGPIPE does (a shell reports those as 128 + 13)."""


class MhwError(Exception):
    """An error the user can fix; its message is one line that says how."""

    exit_code: ExitCode = ExitCode.FAILED


class Cancelled(MhwError):
    """Ctrl-C stopped mhw before it did anything that cannot be undone; the message says what
    was left undone."""

    exit_code = ExitCode.INTERRUPTED


class UsageError(MhwError):
    """The command line or an input file is wrong."""

    exit_code = ExitCode.USAGE


class InvalidValue(UsageError, ValueError):
    """A value given to mhw (a setting, an option, a file's content) is not valid."""


class CaptureError(InvalidValue):
    """The bytes are not an HTTP request we can take a body from."""


class OverrideError(InvalidValue):
    """A ``--set`` assignment that cannot be applied; the message says why, on one line."""


class StoreError(MhwError):
    """The capture store cannot be opened, read or written; the message names the file."""


class StoreClosed(StoreError):
    """Not stored because the store is closing: mhw is stopping. The listener answers 503,
    and the sender delivers the request again later."""


class TunnelError(MhwError):
    """The tunnel could not open; the message is one line that says how to fix it."""


class ApiError(MhwError):
    """The Magic Hour API refused a request or could not be reached; one line says what to do."""

    exit_code = ExitCode.API_ERROR

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        api_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status, or None when no answer came."""
        self.code = code
        """The API's error code, when its answer had one."""
        self.api_message = api_message
        """The API's own words, when its answer had any."""


class DeadlineExceeded(TimeoutError):
    """The whole exchange took longer than its deadline; ``phase`` says where it stood."""

    def __init__(self, seconds: float, phase: str) -> None:
        super().__init__(f"timed out after {seconds:g} s {phase}")
        self.seconds = seconds
        self.phase = phase
