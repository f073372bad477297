"""Exit codes and the errors that map to them.

Every command documents its exit codes in terms of :class:`ExitCode`; the CLI
entry point turns a :class:`MhwError` into one line on stderr and its code,
never a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """The command did what was asked and every check passed."""
    FAILED = 1
    """A check failed: invalid signature, schema findings, a handler that did not answer 2xx."""
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
    BROKEN_PIPE = 141
    """stdout's reader went away (``mhw ... | head -1``): mhw stopped quietly, as a filter
    killed by SIGPIPE does (a shell reports those as 128 + 13)."""


class MhwError(Exception):
    """An error the user can fix; its message is one line that says how."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(MhwError):
    """The command line or an input file is wrong."""

    exit_code = ExitCode.USAGE
