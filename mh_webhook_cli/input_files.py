"""Read a file or stream a user points mhw at, without trusting it to end.

A body, a capture or an event may be given as a path or on stdin, and either can be
``/dev/zero``, ``/dev/urandom``, a FIFO someone feeds forever, or a multi-gigabyte log: read
whole, each would take all the memory there is. So every such read goes through here and
takes at most a limit: 16 MiB by default (a Magic Hour event is a few KiB; mhw's own
listener refuses bodies far smaller), raised with the ``MHW_MAX_INPUT_BYTES`` environment
variable. One variable rather than a flag on each command: the limit is the same for
every command that reads input, scripts set it once, and the error that stops at the
limit names it.

A device (a character or block special file) is refused by its type before anything is
read, except a terminal, where a person types the input and ends it. A regular file
larger than the limit is refused by its size. Anything else (a FIFO, a pipe, a file that
grows while read) is read up to one byte past the limit and refused when that byte is
there.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import BinaryIO

from mh_webhook_cli.errors import UsageError

MAX_INPUT_ENV = "MHW_MAX_INPUT_BYTES"
DEFAULT_MAX_INPUT_BYTES = 16 * 1024 * 1024


def max_input_bytes(env: Mapping[str, str] | None = None) -> int:
    """The most bytes a command reads from one input: ``MHW_MAX_INPUT_BYTES`` or 16 MiB."""
    text = (os.environ if env is None else env).get(MAX_INPUT_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_INPUT_BYTES
    if not text.isdecimal() or int(text) < 1:
        raise UsageError(f"{MAX_INPUT_ENV} must be a whole number of bytes, not {text[:40]!r}")
    return int(text)


def read_bounded(handle: BinaryIO, *, what: str, limit: int | None = None) -> bytes:
    """All of ``handle``'s bytes, or a one-line usage error when they would exceed ``limit``.

    ``what`` names the input in the error (``"body /tmp/x.json"``, ``"request on stdin"``).
    """
    limit = max_input_bytes() if limit is None else limit
    descriptor = handle.fileno()
    status = os.fstat(descriptor)
    is_device = stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode)
    if is_device and not os.isatty(descriptor):
        raise UsageError(f"{what} is a device, not a file")
    if stat.S_ISREG(status.st_mode) and status.st_size > limit:
        raise _too_large(what, limit)
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise _too_large(what, limit)
    return data


def _too_large(what: str, limit: int) -> UsageError:
    return UsageError(
        f"{what} is larger than {_size(limit)}: set {MAX_INPUT_ENV} to a larger number of "
        "bytes to read it"
    )


def _size(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"
