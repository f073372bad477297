"""Presentation helpers shared by several commands."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mh_webhook_cli.core.times import parse_duration, parse_time, utc_iso_ms
from mh_webhook_cli.errors import InvalidValue


@given(st.floats(min_value=-1_000_000_000, max_value=4_102_444_800, allow_nan=False))
@example(1_831_452_041.9069998)  # rounds up to the next millisecond at the microsecond
@example(1_700_000_000.9999996)  # rounds up to the next second
@example(-0.5)
def test_utc_iso_ms_says_what_datetime_says(timestamp: float) -> None:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert utc_iso_ms(timestamp) == expected


def _drawn_with_links(urls: list[str]) -> str:
    """``-v``'s download lines for ``urls``, as rich draws them on a colour terminal."""
    import io

    from rich.console import Console
    from rich.text import Text

    from mh_webhook_cli.core.request import Received, Request
    from mh_webhook_cli.report.listen import payload_lines

    document = {"type": "video.completed", "payload": {"downloads": [{"url": u} for u in urls]}}
    request = Request("POST", "/", [], b"{}", "127.0.0.1:1", {})
    delivery = Received(request, 0.0, "unsigned", [], 200, "video.completed", None, document)
    drawn = io.StringIO()
    console = Console(file=drawn, force_terminal=True, color_system="truecolor", width=200)
    for line in payload_lines(delivery):
        console.print(Text(line) if isinstance(line, str) else Text.assemble(*line))
    return drawn.getvalue()


def test_a_download_url_is_a_link_only_when_it_is_a_plain_http_url() -> None:
    """A sender's URL goes into a rich style string and an OSC 8 sequence: only plain ones."""
    plain = "https://videos.magichour.ai/id/output.mp4"
    hostile = [
        "https://example.com/a nonsense",  # rich would parse "nonsense" as a style: an error
        "https://example.com/a on red blink",  # or restyle the line
        "javascript:alert(1)",
        "https://example.com/\u00a0bold",  # a non-ASCII space splits a style too
    ]
    drawn = _drawn_with_links([plain, *hostile])
    assert drawn.count("\x1b]8;id=") == 1
    assert f";{plain}\x1b\\" in drawn
    assert "\x1b[5m" not in drawn  # no blink from the sender


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"type": "video.completed", "payload": {"list": list(range(50_000))}}).encode(),
        json.dumps({"type": "video.completed", "payload": {"name": "a" * 1_000_000}}).encode(),
        b"x" * 1_000_000,  # not JSON: shown as it came
        b"[" * 100_000,  # nested deeper than Python reads
    ],
    ids=["many lines", "a long string", "long raw body", "deep nesting"],
)
def test_verbose_shows_a_bounded_part_of_a_huge_payload(body: bytes) -> None:
    """``-v`` draws on the listener's loop: a megabyte must not take it seconds to draw."""
    from mh_webhook_cli.core.request import Request
    from mh_webhook_cli.receive.listener import ListenConfig, Listener
    from mh_webhook_cli.report.listen import payload_lines

    listener = Listener(ListenConfig(), None, lambda _: None)
    delivery = listener.judge(Request("POST", "/", [], body, "127.0.0.1:1", {}))
    delivery.id = 7
    lines = [
        [text for text, _ in line] for line in payload_lines(delivery) if not isinstance(line, str)
    ]
    assert len(lines) <= 202
    assert sum(len(text) for line in lines for text in line) < 300_000
    assert "mhw events show 7" in lines[-1][-1]


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1730742100", 1730742100.0),  # Unix seconds, as a signature's timestamp
        (" 1730742100.5 ", 1730742100.5),
        ("2024-11-04T17:41:40Z", 1730742100.0),
        ("2024-11-04T17:41:40z", 1730742100.0),
        ("2024-11-04T17:41:40", 1730742100.0),  # no zone: UTC, not the machine's zone
        ("2024-11-04T19:41:40+02:00", 1730742100.0),
        ("30m", NOW - 1800),
        ("1.5h", NOW - 5400),
        ("2D", NOW - 172800),
        ("1w", NOW - 604800),
        ("45 s", NOW - 45),
    ],
)
def test_parse_time_reads_every_form_a_person_types(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW, what="--at") == expected


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "yesterday", "5 fortnights", "", "1e999"])
def test_parse_time_refuses_in_one_line_naming_the_option(text: str) -> None:
    with pytest.raises(InvalidValue, match=r"^--since ") as refused:
        parse_time(text, now=NOW, what="--since")
    assert "\n" not in str(refused.value)
    assert isinstance(refused.value, ValueError)  # a library caller catches what Python raises


def test_parse_duration_is_none_for_what_is_not_one() -> None:
    assert parse_duration("10m") == 600
    assert parse_duration("10") is None  # a bare number is a moment (Unix seconds), not an age
    assert parse_duration("m") is None


@pytest.mark.parametrize(("retries", "said"), [(0, "0 retries"), (1, "1 retry"), (2, "2 retries")])
def test_the_emulators_summary_counts_retries_in_words(retries: int, said: str) -> None:
    from mh_webhook_cli.magichour.emulator import EmulatorStats
    from mh_webhook_cli.report.emulate import summary_lines

    lines = summary_lines(EmulatorStats(delivered=1, retries=retries))
    text = [line if isinstance(line, str) else "".join(part for part, _ in line) for line in lines]
    assert f"1 delivered, {said}, 0 given up" in text[1]


def test_the_banner_shows_the_events_filter() -> None:
    """``--events`` narrows what is shown and forwarded, not what is stored: the banner says
    both, so a quiet screen is not taken for a quiet sender."""
    from mh_webhook_cli.receive.activity import Listening
    from mh_webhook_cli.report.listen import banner_lines

    def shown(events: tuple[str, ...]) -> list[str]:
        listening = Listening(
            url="http://127.0.0.1:8787/",
            public_url=None,
            webhook_url=None,
            any_path=True,
            secrets=(),
            store="/tmp/events.sqlite3",
            forwards=(),
            expected=(),
            count=1,
            events=events,
        )
        return [
            line if isinstance(line, str) else "".join(t for t, _ in line)
            for line in banner_lines(listening)
        ]

    assert "  show     video.*, image.completed (every event is stored)" in shown(
        ("video.*", "image.completed")
    )
    assert not any(line.startswith("  show ") for line in shown(()))
