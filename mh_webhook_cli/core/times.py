"""Times as people type them and as mhw shows them: one parser, one set of formats.

A person gives a moment as Unix seconds (``1730742100``, as a signature's timestamp is),
an ISO 8601 time (``2026-11-23T14:05:00Z``; no zone means UTC, as everywhere in mhw), or
a duration ago (``30m``, ``1.5h``, ``2d``, ``1w``). ``mhw verify --at`` and ``mhw events
list --since`` both read theirs with :func:`parse_time`, so one command never accepts
what another refuses. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import functools
import math
import re
import time
from datetime import datetime, timezone

from mh_webhook_cli.errors import InvalidValue

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """``30m``, ``1.5h``, ``2d``, ``1w`` in seconds; None when ``text`` is not a duration."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def parse_time(text: str, *, now: float, what: str) -> float:
    """The moment ``text`` names, in Unix seconds: a duration before ``now``, Unix seconds or
    an ISO 8601 time (``Z`` allowed; no zone means UTC).

    ``what`` names the value in the one-line :class:`~mh_webhook_cli.errors.InvalidValue`
    (``"--at"``), which never lets ``nan`` or ``inf`` through: every age check would pass.
    """
    stripped = text.strip()
    ago = parse_duration(stripped)
    if ago is not None:
        return now - ago
    try:
        seconds = float(stripped)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise InvalidValue(f"{what} {text!r} is not a time")
        return seconds
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidValue(
            f"{what} {text!r} is neither Unix seconds, an ISO 8601 time (like "
            "2026-11-23T14:05:00Z) nor a duration ago (30m, 1h, 2d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def describe_age(seconds: float) -> str:
    """``'3 minutes ago'`` or ``'in 2 hours'``: how far a timestamp is from now."""
    distance = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if distance >= size or unit == "second":
            count = int(distance // size)
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            break
    return f"in {words}" if seconds < 0 else f"{words} ago"


def utc_iso(timestamp: int) -> str | None:
    """The timestamp as UTC ISO 8601; None beyond what a date can show (a forged timestamp
    may lie after year 9999)."""
    try:
        moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat().replace("+00:00", "Z")


def utc_iso_ms(timestamp: float) -> str:
    """UTC to the millisecond (``2026-11-23T17:58:06.054Z``), as JSON lines and HAR want it.

    The same text as ``datetime.isoformat(timespec="milliseconds")`` in half the time: a
    listener stamps every request, and within one second only the milliseconds change.
    """
    whole = math.floor(timestamp)  # before 1970 too: -0.5 is 23:59:59.500
    # Rounded to the microsecond first, as datetime.fromtimestamp does, then truncated.
    micro = round((timestamp - whole) * 1_000_000)
    if micro == 1_000_000:
        whole, micro = whole + 1, 0
    return f"{_utc_second(whole)}.{micro // 1000:03d}Z"


@functools.lru_cache(maxsize=1)
def _utc_second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
