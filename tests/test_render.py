"""Presentation helpers shared by several commands."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import example, given
from hypothesis import strategies as st

from mh_webhook_cli.render import utc_iso_ms


@given(st.floats(min_value=-1_000_000_000, max_value=4_102_444_800, allow_nan=False))
@example(1_831_452_041.9069998)  # rounds up to the next millisecond at the microsecond
@example(1_700_000_000.9999996)  # rounds up to the next second
@example(-0.5)
def test_utc_iso_ms_says_what_datetime_says(timestamp: float) -> None:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert utc_iso_ms(timestamp) == expected
