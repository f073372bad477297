"""Read a file or stream a user points mhw at, without trusting it to end.

A body, a capture or an event may be given as a path or on stdin, and either can be
``/dev/zero``, ``/dev/urandom``, a FIFO someone feeds forever, or a multi-gigabyte log: read
whole, each would take all the memory there is. So every such read goes through here and
takes at most a limit: 16 MiB by default (a Magic Hour event is a few KiB; mhw's own
listener refuses bodies far smaller), raised with the ``MHW_MAX_INPUT_BYTES`` environment
variable. One variable rather than a flag on each command: the limit is the same for
every command that reads input, scripts set it once, and the error that stops at the
limit names it. Config files have a fixed, smaller limit of their own.

A device (a character or block special file) is refused by its type before anything is
read, except a terminal, where a person types the input and ends it. A regular file
larger than the limit is refused by its size. Anything else (a FIFO, a pipe, a file that
grows while read) is read up to one byte past the limit and refused when that byte is
there.

A path is opened without blocking (:func:`read_file`): opening a FIFO blocks until
something opens it for writing, and opening some devices blocks too, both before the type
could be looked at. A config file must be a regular file; an input named by path may be
a FIFO, and then mhw waits for its writer, as ``cat`` does.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from mh_webhook_cli.errors import UsageError

MAX_INPUT_ENV = "MHW_MAX_INPUT_BYTES"
DEFAULT_MAX_INPUT_BYTES = 16 * 1024 * 1024

_NO_WAIT = getattr(os, "O_NONBLOCK", 0)
"""Opening a FIFO with no writer returns at once instead of waiting (POSIX; Windows has
no FIFOs at a path, and no flag)."""
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
"""Never make a terminal named by path our controlling terminal; no CRLF translation on
Windows."""


def max_input_bytes() -> int:
    """The most bytes a command reads from one input: ``MHW_MAX_INPUT_BYTES`` or 16 MiB."""
    text = os.environ.get(MAX_INPUT_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_INPUT_BYTES
    if not text.isdecimal() or int(text) < 1:
        raise UsageError(f"{MAX_INPUT_ENV} must be a whole number of bytes, not {text[:40]!r}")
    return int(text)


def read_file(
    path: Path, what: str, limit: int | None = None, *, regular_only: bool = False
) -> bytes:
    """All the bytes of the file at ``path``, at most ``limit`` (by default the input limit).

    A one-line usage error for a device, a file past the limit, anything but a regular
    file when ``regular_only`` (config files: a FIFO there is a mistake, not an input to
    wait for), and a file that cannot be read. FileNotFoundError is left to the caller:
    a config file that does not exist is an empty one, a body that does not exist is not.
    """
    try:
        descriptor = os.open(path, _OPEN_FLAGS | _NO_WAIT)
    except FileNotFoundError:
        raise
    except OSError as failure:
        raise _unreadable(what, failure) from None
    try:
        status = os.fstat(descriptor)
        _refuse_device(status, descriptor, what)
        if regular_only and not stat.S_ISREG(status.st_mode):
            raise UsageError(f"{what} is not a regular file")
        if stat.S_ISFIFO(status.st_mode):
            # Without a writer yet, a read would end at once: an empty input, not the one
            # about to be written. Ready means data, or a writer that came and went.
            select.select([descriptor], [], [])
        if _NO_WAIT:
            os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = -1  # closed with the handle from here on
            return read_bounded(handle, what=what, limit=limit)
    except OSError as failure:
        raise _unreadable(what, failure) from None
    finally:
        if descriptor >= 0:
            os.close(descriptor)


def read_input(path: str | None, *, what: str) -> bytes:
    """The exact bytes of ``path``, or of stdin for ``-`` or when stdin is piped.

    Every command that reads a body, a capture or an event reads it here, bounded: a
    device or an endless stream is one line. ``what`` names the input in errors
    (``"body"``); no input at all (a terminal on stdin, or nothing piped) is a usage error.
    """
    if path is None or path == "-":
        if path is None and sys.stdin.isatty():
            raise UsageError(f"no {what}: give a file, or pipe it on stdin")
        data = read_bounded(sys.stdin.buffer, what=f"the {what} on stdin")
        if path is None and not data:
            raise UsageError(f"no {what}: stdin was empty")
        return data
    try:
        return read_file(Path(path).expanduser(), f"{what} {path}")
    except FileNotFoundError as failure:
        raise UsageError(f"cannot read {what} {path}: {failure.strerror}") from None


def read_piped_line(what: str, limit: int) -> str:
    """The first line on stdin, without its line ending, reading at most ``limit`` bytes.

    Read as bytes and decoded as argv is (``surrogateescape``), so that bytes that are not
    UTF-8 reach the same check as a bad argument does, not a traceback here.
    """
    piped = read_bounded(sys.stdin.buffer, what=what, limit=limit)
    return piped.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "surrogateescape")


def read_bounded(handle: BinaryIO, *, what: str, limit: int | None = None) -> bytes:
    """All of ``handle``'s bytes, or a one-line usage error when they would exceed ``limit``.

    ``what`` names the input in the error (``"body /tmp/x.json"``, ``"request on stdin"``).
    ``limit`` None is the input limit, which ``MHW_MAX_INPUT_BYTES`` raises.
    """
    maximum = max_input_bytes() if limit is None else limit
    descriptor = handle.fileno()
    status = os.fstat(descriptor)
    _refuse_device(status, descriptor, what)
    if stat.S_ISREG(status.st_mode) and status.st_size > maximum:
        raise _too_large(what, maximum, raisable=limit is None)
    data = handle.read(maximum + 1)
    if len(data) > maximum:
        raise _too_large(what, maximum, raisable=limit is None)
    return data


def _refuse_device(status: os.stat_result, descriptor: int, what: str) -> None:
    is_device = stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode)
    if is_device and not os.isatty(descriptor):
        raise UsageError(f"{what} is a device, not a file")


def _unreadable(what: str, failure: OSError) -> UsageError:
    return UsageError(f"cannot read {what}: {failure.strerror or failure}")


def _too_large(what: str, limit: int, *, raisable: bool) -> UsageError:
    message = f"{what} is larger than {_size(limit)}"
    if raisable:  # a fixed limit (a config file's) is not raised by the variable
        message += f": set {MAX_INPUT_ENV} to a larger number of bytes to read it"
    return UsageError(message)


def _size(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (0600).

    Every file mhw writes for itself may name secrets, the local store or a port (the config,
    the listener registry, ``--ready-file``), and each has a reader that polls it: written to
    a fresh temporary name in the same directory and renamed, a reader never sees half a
    file, and a leftover temporary (or one someone else planted) is never reused.
    """
    import tempfile

    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}-", suffix=".tmp"
    )
    try:
        # mkstemp creates the file 0600 already; fchmod makes it explicit and umask-proof.
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
